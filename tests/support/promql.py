"""Reading Prometheus expositions and PromQL in tests: which series a scrape has, which
series an alert or a dashboard query reads. Shared by the alert and dashboard tests."""

from __future__ import annotations

import re

from tests.support.chart import REPO

SCRAPE = REPO / "tests" / "fixtures" / "metrics" / "scrape.txt"
"""A real scrape of the operator (recaptured with KADENCE_CAPTURE_METRICS_FIXTURE)."""

PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}


def families(text: str) -> dict[str, str]:
    """The metric families of an exposition, by name, with their type (the # TYPE lines)."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def exported_names(text: str) -> set[str]:
    """The series names a Prometheus scraping this exposition stores."""
    names = set()
    for name, kind in families(text).items():
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        else:
            names.add(name)
    return names


def series_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Label matchers, range and subquery brackets, grouping clauses and strings are removed
    first; what remains that is a word, not a keyword and not followed by "(" is a name.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        word = match.group()
        if word.lower() in PROMQL_WORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def parse_selector(selector: str) -> tuple[str, dict[str, str]]:
    """name{a="b",...} as a promtool input series writes it."""
    found = re.fullmatch(r"([A-Za-z_:][\w:]*)(?:\{(.*)\})?", selector.strip())
    assert found, selector
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(2) or ""))
    return found.group(1), labels


def scrape_shapes(text: str) -> dict[str, set[frozenset[str]]]:
    """For each series name of an exposition, the sets of label names it comes with."""
    shapes: dict[str, set[frozenset[str]]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, labels = parse_selector(line.rsplit(" ", 1)[0])
            shapes.setdefault(name, set()).add(frozenset(labels))
    return shapes

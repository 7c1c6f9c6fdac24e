"""The chart's alerts (charts/kadence/files/alerts.yaml), checked with promtool.

- The PrometheusRule that the chart renders passes `promtool check rules` with every lint,
  with the default thresholds and with others.
- tests/fixtures/metrics/alerts.test.yaml: each alert fires on input series shaped like a
  real scrape, with its labels and annotations filled in, and stays quiet where it should
  (`promtool test rules` on the rules rendered with the default values).
- The thresholds in values.yaml move the alerts: situations generated here fire or stay
  quiet on either side of each threshold given.
- Every series an alert reads is one the operator exports, and every input series has the
  name and labels of one (tests/fixtures/metrics/scrape.txt, a scrape of the end-to-end
  suite's operator, kept in step with operator/kadence/metrics.py by a test here).

promtool comes from tests/cluster/build.sh, like helm.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from kadence.metrics import StateCollector
from tests.support.chart import REPO, Runner, render_helm, the, tool
from tests.support.promql import (
    SCRAPE,
    exported_names,
    families,
    parse_selector,
    scrape_shapes,
    series_names,
)

FIXTURES = REPO / "tests" / "fixtures" / "metrics"
GOLDEN = FIXTURES / "alerts.test.yaml"
ALERTS_FILE = REPO / "charts" / "kadence" / "files" / "alerts.yaml"
RULES_NAME = "alerts.rules.yaml"  # what alerts.test.yaml's rule_files names

ALERTS = {
    "KadenceScheduleDeadlinesMissed",
    "KadenceScheduleLate",
    "KadenceScheduleFailing",
    "KadenceTaskQueuedTooLong",
    "KadenceOperatorDown",
    "KadenceNoLeader",
    "KadenceOperatorNotFiring",
    "KadenceAdmissionPoliciesMissing",
}
TARGET = {"job": "kadence-metrics", "instance": "10.244.0.7:9090"}
"""The labels Prometheus adds to each series of the operator's target."""
MAY_BE_EMPTY = {"kadence_queue_": "namespace"}
"""Labels whose value may be empty, which Prometheus stores as no label at all: the
namespace of a queue shared between namespaces (kadence.metrics.QueueState)."""

# -- the chart's rules --------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Runner:
    return tool("helm")


@pytest.fixture(scope="module")
def promtool() -> Runner:
    return tool("promtool")


def rule_groups(helm: Runner, **settings: Any) -> dict[str, Any]:
    """The PrometheusRule's spec (its `groups`), the chart rendered with these settings."""
    values = {"metrics": {"prometheusRule": {"enabled": True, **settings}}}
    return dict(the(render_helm(helm, values), "PrometheusRule")["spec"])


def rules(groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups["groups"] for rule in group["rules"]}


def write(path: Path, document: Any) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False, width=1000))
    return path


CUSTOM = {
    "deadlinesMissedWindow": "10m",
    "scheduleLateSeconds": 60,
    "consecutiveFailures": 5,
    "queueWaitSeconds": 120,
    "operatorDownFor": "2m",
    "noLeaderFor": "3m",
    "notFiringSeconds": 240,
    "admissionPoliciesMissingFor": "1m",
    "job": "kadence-scraped",
    "alertLabels": {"team": "platform"},
}


@pytest.mark.parametrize("settings", [{}, CUSTOM], ids=["defaults", "custom"])
def test_the_rendered_rules_pass_promtool_check(
    helm: Runner, promtool: Runner, tmp_path: Path, settings: dict[str, Any]
) -> None:
    path = write(tmp_path / RULES_NAME, rule_groups(helm, **settings))
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(path), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_chart_renders_every_alert_of_its_file(helm: Runner) -> None:
    in_file = set(re.findall(r"^\s*- alert: (\w+)$", ALERTS_FILE.read_text(), re.MULTILINE))
    assert in_file == ALERTS
    assert set(rules(rule_groups(helm))) == ALERTS


def test_every_alert_says_what_happened_and_what_to_check(helm: Runner) -> None:
    for name, rule in rules(rule_groups(helm)).items():
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description"}, name
        assert "kubectl" in annotations["description"], name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
    # Helm filled in its own parts; Prometheus's are left for Prometheus.
    text = yaml.safe_dump(rule_groups(helm))
    assert "{{ $labels." in text
    for helm_only in ("$r.", ".Values", "{{`"):
        assert helm_only not in text


def test_alert_labels_and_the_job_come_from_the_values(helm: Runner) -> None:
    default = rules(rule_groups(helm))
    assert 'up{job="kadence-metrics"}' in default["KadenceOperatorDown"]["expr"]
    assert 'kadence_leader{job="kadence-metrics"}' in default["KadenceNoLeader"]["expr"]
    service = the(render_helm(helm), "Service")["metadata"]["name"]
    assert service == "kadence-metrics"  # the job a ServiceMonitor gives the target
    custom = rules(rule_groups(helm, **CUSTOM))
    assert 'up{job="kadence-scraped"}' in custom["KadenceOperatorDown"]["expr"]
    assert 'kadence_leader{job="kadence-scraped"}' in custom["KadenceNoLeader"]["expr"]
    for name in ("KadenceOperatorDown", "KadenceNoLeader"):
        assert "kadence-metrics" not in custom[name]["expr"], name
    for name, rule in custom.items():
        assert rule["labels"]["team"] == "platform", name


def test_no_leader_alert_only_with_leader_election(helm: Runner) -> None:
    """Without leader election the one replica acts without a Lease and kadence_leader
    stays 0: KadenceNoLeader would always fire, so it is left out."""
    values = {
        "replicas": 1,
        "leaderElection": {"enabled": False},
        "metrics": {"prometheusRule": {"enabled": True}},
    }
    groups = the(render_helm(helm, values), "PrometheusRule")["spec"]
    assert set(rules(groups)) == ALERTS - {"KadenceNoLeader"}


# -- the promtool unit tests ----------------------------------------------------------------


def run_promtool_tests(promtool: Runner, tests: Path) -> None:
    result = promtool("test", "rules", str(tests), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_fires_when_and_only_when_its_tests_say(
    helm: Runner, promtool: Runner, tmp_path: Path
) -> None:
    write(tmp_path / RULES_NAME, rule_groups(helm))
    tests = Path(shutil.copy(GOLDEN, tmp_path / GOLDEN.name))
    run_promtool_tests(promtool, tests)


def test_the_promtool_tests_are_seen_to_fail(
    helm: Runner, promtool: Runner, tmp_path: Path
) -> None:
    """The same tests on rules whose thresholds are off fail: they test the rules."""
    write(tmp_path / RULES_NAME, rule_groups(helm, consecutiveFailures=4, scheduleLateSeconds=400))
    shutil.copy(GOLDEN, tmp_path / GOLDEN.name)
    result = promtool("test", "rules", str(tmp_path / GOLDEN.name), check=False)
    assert result.returncode != 0
    assert "alertname: KadenceScheduleFailing" in result.stdout + result.stderr
    assert "alertname: KadenceScheduleLate" in result.stdout + result.stderr


def golden_cases() -> list[dict[str, Any]]:
    return list(yaml.safe_load(GOLDEN.read_text())["tests"])


def test_every_alert_is_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for group in golden_cases():
        for case in group["alert_rule_test"]:
            (firing if case["exp_alerts"] else quiet).add(case["alertname"])
    assert firing == ALERTS
    assert quiet == ALERTS


def test_every_firing_case_checks_the_annotations() -> None:
    for group in golden_cases():
        for case in group["alert_rule_test"]:
            for alert in case["exp_alerts"]:
                annotations = alert.get("exp_annotations", {})
                assert set(annotations) == {"summary", "description"}, case
                own = [v for k, v in alert["exp_labels"].items() if k not in {"severity", *TARGET}]
                for value in own:
                    assert value in annotations["description"], (value, case)
                assert not own or any(value in annotations["summary"] for value in own), case


# -- the same situations with other thresholds ----------------------------------------------


@dataclass
class Situation:
    """A generated promtool test: series, when the alert stays quiet, when it fires."""

    alert: str
    series: dict[str, str]
    quiet: list[str]
    fires_at: str
    firing: list[dict[str, str]]
    default_differs_at: str
    """A time at which the rules with the default thresholds decide the other way."""
    default_firing: list[dict[str, str]] | None = None
    """The labels the default rules fire with there, when not `firing`'s less `team`
    (an alert on the default job keeps that job's label)."""

    def promtool_test(self) -> dict[str, Any]:
        cases: list[dict[str, Any]] = [
            {"eval_time": at, "alertname": self.alert, "exp_alerts": []} for at in self.quiet
        ]
        cases.append(
            {
                "eval_time": self.fires_at,
                "alertname": self.alert,
                "exp_alerts": [{"exp_labels": labels} for labels in self.firing],
            }
        )
        return {
            "name": f"{self.alert} with custom thresholds",
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in self.series.items()],
            "alert_rule_test": cases,
        }


def selector(name: str, **labels: str) -> str:
    pairs = {**labels, **TARGET}
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in pairs.items()) + "}"


NIGHTLY = {"namespace": "team-a", "schedule": "nightly", "scheduler_id": "reports"}


def alert_labels(severity: str, **labels: str) -> dict[str, str]:
    return {"severity": severity, "team": "platform", **labels}


def custom_situations() -> list[Situation]:
    """Each alert under CUSTOM: quiet before the custom threshold, firing past it."""
    return [
        # A 10m window: a miss at 1m is gone by 12m (the default 1h would still fire).
        Situation(
            "KadenceScheduleDeadlinesMissed",
            {
                selector("kadence_schedule_deadlines_missed_total", **NIGHTLY): "0 1x20",
                selector("kadence_schedule_deadlines_skipped_total", **NIGHTLY): "0x21",
            },
            quiet=["0m", "12m"],
            fires_at="5m",
            firing=[alert_labels("warning", **NIGHTLY, **TARGET)],
            default_differs_at="12m",
        ),
        # 60s late: fires at 12m for a deadline at 10m (the default 300s would not).
        Situation(
            "KadenceScheduleLate",
            {
                selector("kadence_schedule_next_deadline_timestamp_seconds", **NIGHTLY): "600x20",
                selector("kadence_schedule_enabled", **NIGHTLY): "1x20",
            },
            quiet=["11m"],
            fires_at="12m",
            firing=[alert_labels("warning", **NIGHTLY, **TARGET)],
            default_differs_at="12m",
        ),
        # Five failures in a row: four do not fire (three would by default).
        Situation(
            "KadenceScheduleFailing",
            {selector("kadence_schedule_consecutive_failures", **NIGHTLY): "3 4 5"},
            quiet=["0m", "1m"],
            fires_at="2m",
            firing=[alert_labels("warning", **NIGHTLY, **TARGET)],
            default_differs_at="1m",
        ),
        # Queued for more than 120s (not the default 1800s).
        Situation(
            "KadenceTaskQueuedTooLong",
            {
                selector(
                    "kadence_queue_oldest_pending_timestamp_seconds",
                    namespace="team-a",
                    scheduler_id="reports",
                ): "60x10"
            },
            quiet=["3m"],
            fires_at="4m",
            firing=[alert_labels("warning", namespace="team-a", scheduler_id="reports", **TARGET)],
            default_differs_at="4m",
        ),
        # The target of the job named in the values, down for 2m (not 5m).
        Situation(
            "KadenceOperatorDown",
            {'up{job="kadence-scraped",instance="10.244.0.7:9090"}': "0x10"},
            quiet=["1m"],
            fires_at="2m",
            firing=[alert_labels("critical", job="kadence-scraped", instance=TARGET["instance"])],
            default_differs_at="2m",
        ),
        # No replica of the job named in the values leads for 3m (not 1m): both stand by.
        Situation(
            "KadenceNoLeader",
            {
                'kadence_leader{job="kadence-scraped",instance="10.244.0.7:9090"}': "0x10",
                'kadence_leader{job="kadence-scraped",instance="10.244.0.8:9090"}': "0x10",
                selector("kadence_leader"): "0x10",  # the default job: not the custom rules'
            },
            quiet=["2m"],
            fires_at="3m",
            firing=[alert_labels("critical", job="kadence-scraped")],
            default_differs_at="2m",
            default_firing=[{"severity": "critical", "job": TARGET["job"]}],
        ),
        # A Ready, enabled Schedule 240s overdue (not 900s).
        Situation(
            "KadenceOperatorNotFiring",
            {
                selector("kadence_schedule_next_deadline_timestamp_seconds", **NIGHTLY): "600x20",
                selector("kadence_schedule_enabled", **NIGHTLY): "1x20",
                selector("kadence_schedule_ready", **NIGHTLY): "1x20",
            },
            quiet=["14m"],
            fires_at="15m",
            firing=[alert_labels("critical", job=TARGET["job"])],
            default_differs_at="15m",
        ),
        # Policies missing for 1m (not 5m).
        Situation(
            "KadenceAdmissionPoliciesMissing",
            {selector("kadence_admission_policies_missing"): "0 2x10"},
            quiet=["1m"],
            fires_at="2m",
            firing=[alert_labels("critical", **TARGET)],
            default_differs_at="2m",
        ),
    ]


def without_annotations(groups: dict[str, Any]) -> dict[str, Any]:
    """The rules as rendered, less their annotations: promtool compares annotations whole,
    and the golden tests already check them."""
    return {
        "groups": [
            {
                **group,
                "rules": [
                    {k: v for k, v in rule.items() if k != "annotations"} for rule in group["rules"]
                ],
            }
            for group in groups["groups"]
        ]
    }


def test_the_thresholds_in_the_values_move_the_alerts(
    helm: Runner, promtool: Runner, tmp_path: Path
) -> None:
    situations = custom_situations()
    assert {s.alert for s in situations} == ALERTS
    write(tmp_path / RULES_NAME, without_annotations(rule_groups(helm, **CUSTOM)))
    tests = write(
        tmp_path / "custom.test.yaml",
        {
            "rule_files": [RULES_NAME],
            "evaluation_interval": "1m",
            "tests": [s.promtool_test() for s in situations],
        },
    )
    run_promtool_tests(promtool, tests)


def test_the_default_thresholds_decide_the_same_situations_the_other_way(
    helm: Runner, promtool: Runner, tmp_path: Path
) -> None:
    """At each situation's `default_differs_at`, the rules rendered with the default values
    fire where the custom ones stay quiet, or the other way round: the values did move the
    threshold."""
    write(tmp_path / RULES_NAME, without_annotations(rule_groups(helm)))
    tests = []
    for situation in custom_situations():
        custom_fires = situation.default_differs_at == situation.fires_at
        assert custom_fires or situation.default_differs_at in situation.quiet, situation.alert
        default_firing = situation.default_firing or [
            {k: v for k, v in labels.items() if k != "team"} for labels in situation.firing
        ]
        expected = [] if custom_fires else [{"exp_labels": labels} for labels in default_firing]
        tests.append(
            {
                **situation.promtool_test(),
                "alert_rule_test": [
                    {
                        "eval_time": situation.default_differs_at,
                        "alertname": situation.alert,
                        "exp_alerts": expected,
                    }
                ],
            }
        )
    path = write(
        tmp_path / "defaults.test.yaml",
        {"rule_files": [RULES_NAME], "evaluation_interval": "1m", "tests": tests},
    )
    run_promtool_tests(promtool, path)


# -- the series: what the operator exports ----------------------------------------------------


def input_selectors() -> Iterator[str]:
    for group in golden_cases():
        for series in group["input_series"]:
            yield series["series"]
    for situation in custom_situations():
        yield from situation.series


def test_the_input_series_are_shaped_like_a_real_scrape() -> None:
    shapes = scrape_shapes(SCRAPE.read_text())
    seen = set()
    for text in input_selectors():
        name, labels = parse_selector(text)
        assert set(TARGET) <= set(labels), text
        if name == "up":
            continue
        assert name in shapes, f"{name} is not in a scrape of the operator"
        own = frozenset(labels) - set(TARGET)
        allowed = shapes[name] | {
            shape - {label}
            for prefix, label in MAY_BE_EMPTY.items()
            if name.startswith(prefix)
            for shape in shapes[name]
        }
        assert own in allowed, f"{text}: the operator's {name} has labels {shapes[name]}"
        seen.add(name)
    assert len(seen) >= 8


def test_the_alerts_read_only_series_the_operator_exports(helm: Runner) -> None:
    exported = exported_names(SCRAPE.read_text()) | {"up"}
    for name, rule in rules(rule_groups(helm)).items():
        found = series_names(rule["expr"])
        assert found, name
        assert found <= exported, (name, found - exported)


def test_series_names_are_read_from_promql() -> None:
    """The name reader that the two tests above and test_dashboard.py rely on."""
    expr = (
        'histogram_quantile(0.9, sum by (le, scheduler_id) (rate(a_bucket{job=~"x|y"}[5m])))'
        " / on (namespace) group_left (schedule) b offset 1h and bool c:rule > 1e3"
        ' or absent(up{job="and"}) unless count(d[1h:5m]) > inf'
    )
    assert series_names(expr) == {"a_bucket", "b", "c:rule", "up", "d"}


def code_families() -> dict[str, str]:
    """The metric families that operator/kadence/metrics.py registers (the counters and
    histograms at import, the store's series through StateCollector), as an exposition
    declares them."""
    state = CollectorRegistry()
    state.register(StateCollector(lambda: [], lambda: [], lambda: True))
    found: dict[str, str] = {}
    for registry in (REGISTRY, state):
        found.update(families(generate_latest(registry).decode()))
    return found


def kadence_families(found: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """kadence's families, less the `_created` gauges that only series with samples have."""
    return {
        (name, kind)
        for name, kind in found
        if name.startswith("kadence_") and not (kind == "gauge" and name.endswith("_created"))
    }


def test_the_scrape_fixture_has_every_family_of_the_operator() -> None:
    """The fixture is a scrape of the current code: recapture it (see
    tests/e2e/test_metrics_endpoint.py) when operator/kadence/metrics.py changes."""
    fixture = kadence_families(families(SCRAPE.read_text()).items())
    assert fixture == kadence_families(code_families().items())
    assert any(name.startswith("process_") for name in families(SCRAPE.read_text()))

"""The chart's Grafana dashboard (charts/kadence/files/dashboard.json).

- Every panel's query is PromQL that promtool accepts: each becomes a recording rule,
  Grafana's variables given values, and `promtool check rules` reads them.
- The queries read only series the operator exports (the scrape in
  tests/fixtures/metrics/scrape.txt) and variables the dashboard defines.
- The panels the documentation promises are there: queue depth against capacity, wait
  and lag percentiles, runs by outcome, and one row per Schedule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.chart import REPO, Runner, tool
from tests.support.promql import SCRAPE, exported_names, series_names

DASHBOARD = REPO / "charts" / "kadence" / "files" / "dashboard.json"
GRAFANA_INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
"""Grafana's own variables, with values of the kind it gives them."""

Panel = dict[str, Any]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels(items: list[Panel] | None = None) -> Iterator[Panel]:
    """Every panel, rows' own panels included; rows themselves are not panels."""
    for panel in dashboard()["panels"] if items is None else items:
        if panel["type"] == "row":
            yield from panels(panel.get("panels", []))
        else:
            yield panel


def variables() -> set[str]:
    return {variable["name"] for variable in dashboard()["templating"]["list"]}


def with_variables(expr: str) -> str:
    """The query as Grafana sends it: its own intervals, and `.*` for the dashboard's
    variables (All). An unknown variable is left, and is not PromQL."""
    defined = variables()

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in GRAFANA_INTERVALS:
            return GRAFANA_INTERVALS[name]
        return ".*" if name in defined else match.group(0)

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def queries() -> Iterator[tuple[Panel, dict[str, Any]]]:
    for panel in panels():
        for target in panel["targets"]:
            yield panel, target


@pytest.fixture(scope="module")
def promtool() -> Runner:
    return tool("promtool")


def test_every_query_is_promql_that_promtool_reads(promtool: Runner, tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:panel_{panel['id']}:{target['refId'].lower()}",
            "expr": with_variables(target["expr"]),
        }
        for panel, target in queries()
    ]
    assert len(rules) >= 20
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_every_variable_a_query_uses_is_defined() -> None:
    """Inside a label matcher an unknown variable would still be PromQL (a string): it is
    caught here instead."""
    for panel, target in queries():
        assert "$" not in with_variables(target["expr"]), (panel["title"], target["expr"])
    assert with_variables('x{namespace=~"$team"}[$__rate_interval]') == 'x{namespace=~"$team"}[5m]'
    assert with_variables('x{job=~"${job}"}') == 'x{job=~".*"}'


def test_every_query_reads_only_series_the_operator_exports() -> None:
    exported = exported_names(SCRAPE.read_text())
    for panel, target in queries():
        found = series_names(with_variables(target["expr"]))
        assert found, (panel["title"], target["expr"])
        assert found <= exported, (panel["title"], found - exported)


def test_every_panel_queries_the_chosen_data_source() -> None:
    assert "datasource" in variables()
    for panel, target in queries():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    everything = list(dashboard()["panels"])
    ids = [panel["id"] for panel in everything]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in everything:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, (panel["title"], cells.get((x, y)))
                cells[(x, y)] = panel["title"]


def exprs_of(panel: Panel) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def panel_reading(*names: str, kind: str = "timeseries") -> Panel:
    """The one panel of this kind whose queries read all these series."""
    found = [
        panel
        for panel in panels()
        if panel["type"] == kind
        and all(any(name in series_names(e) for e in exprs_of(panel)) for name in names)
    ]
    assert len(found) == 1, (names, [panel["title"] for panel in found])
    return found[0]


def quantiles(panel: Panel, histogram: str) -> set[str]:
    found = set()
    for expr in exprs_of(panel):
        match = re.match(r"histogram_quantile\((0\.\d+), sum by \(le\b", expr)
        if match and f"{histogram}_bucket" in expr:
            found.add(match.group(1))
    return found


def test_queue_depth_shows_pending_and_active_against_capacity() -> None:
    panel_reading(
        "kadence_queue_pending_tasks", "kadence_queue_active_tasks", "kadence_queue_capacity"
    )
    panel_reading("kadence_queue_oldest_pending_timestamp_seconds")


@pytest.mark.parametrize(
    "histogram",
    [
        "kadence_task_wait_seconds",
        "kadence_task_creation_lag_seconds",
        "kadence_job_creation_lag_seconds",
    ],
)
def test_wait_and_lag_show_their_percentiles(histogram: str) -> None:
    found = [p for p in panels() if quantiles(p, histogram) == {"0.5", "0.9", "0.99"}]
    assert len(found) == 1, histogram
    assert found[0]["fieldConfig"]["defaults"]["unit"] == "s"


def test_runs_are_shown_by_outcome() -> None:
    panel = panel_reading("kadence_schedule_runs_total")
    assert any("by (outcome)" in expr for expr in exprs_of(panel))


def test_one_row_per_schedule_with_its_deadlines_runs_and_failures() -> None:
    table = panel_reading(
        "kadence_schedule_next_deadline_timestamp_seconds",
        "kadence_schedule_last_successful_timestamp_seconds",
        "kadence_schedule_last_failed_timestamp_seconds",
        "kadence_schedule_consecutive_failures",
        "kadence_schedule_deadlines_missed_total",
        kind="table",
    )
    for target in table["targets"]:
        assert target["format"] == "table"
        assert target["instant"] is True
        assert "by (namespace, schedule, scheduler_id)" in target["expr"], target["expr"]
    # Merged into one row per Schedule, every column named.
    assert [t["id"] for t in table["transformations"]] == ["merge", "organize"]
    renamed = table["transformations"][1]["options"]["renameByName"]
    assert {f"Value #{t['refId']}" for t in table["targets"]} <= set(renamed)
    columns = set(renamed.values())
    assert {"Next deadline", "Last success", "Last failure", "Consecutive failures"} <= columns
    assert "Missed" in columns

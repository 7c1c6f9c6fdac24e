"""The chart's monitoring objects: a ServiceMonitor, a PrometheusRule and a Grafana
dashboard ConfigMap, each off by default and shaped by the `metrics` values.

What the alerts and the dashboard contain is tested in test_alerts.py and
test_dashboard.py; here, the objects around them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.chart import (
    CHART,
    NAMESPACE,
    Runner,
    helm_template,
    render_helm,
    select,
    the,
    tool,
)

MONITORING_KINDS = ("ServiceMonitor", "PrometheusRule")
ALL_ON = {
    "serviceMonitor": {"enabled": True},
    "prometheusRule": {"enabled": True},
    "dashboard": {"enabled": True},
}


@pytest.fixture(scope="module")
def helm() -> Runner:
    return tool("helm")


def render(helm: Runner, **metrics: Any) -> list[dict[str, Any]]:
    return render_helm(helm, {"metrics": metrics})


def dashboards(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in select(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")]


def test_all_three_are_off_by_default(helm: Runner) -> None:
    objects = render_helm(helm)
    assert select(objects, *MONITORING_KINDS) == []
    assert dashboards(objects) == []


@pytest.mark.parametrize("which", ["serviceMonitor", "prometheusRule", "dashboard"])
def test_each_is_turned_on_alone(helm: Runner, which: str) -> None:
    objects = render(helm, **{which: {"enabled": True}})
    found = {
        "serviceMonitor": len(select(objects, "ServiceMonitor")),
        "prometheusRule": len(select(objects, "PrometheusRule")),
        "dashboard": len(dashboards(objects)),
    }
    assert found == {key: int(key == which) for key in found}


def test_helm_lint_is_clean_with_all_of_them(helm: Runner, tmp_path: Path) -> None:
    values = tmp_path / "values.json"
    values.write_text(json.dumps({"metrics": ALL_ON}))
    result = helm("lint", str(CHART), "--strict", "--values", str(values), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


def test_the_service_monitor_scrapes_the_metrics_service(helm: Runner) -> None:
    objects = render(helm, serviceMonitor={"enabled": True})
    monitor, service = the(objects, "ServiceMonitor"), the(objects, "Service")
    spec = monitor["spec"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in [port["name"] for port in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
    # The series' own namespace label is kept: the target's is dropped before the scrape.
    assert endpoint["relabelings"] == [{"action": "labeldrop", "regex": "namespace"}]
    assert "honorLabels" not in endpoint


def test_the_service_monitor_takes_its_interval_and_labels_from_the_values(helm: Runner) -> None:
    monitor = the(
        render(
            helm,
            serviceMonitor={
                "enabled": True,
                "interval": "1m",
                "scrapeTimeout": "20s",
                "labels": {"release": "prometheus"},
            },
        ),
        "ServiceMonitor",
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("1m", "20s")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kadence"


def test_the_service_monitor_needs_the_service(helm: Runner) -> None:
    values = {"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}}
    result = helm_template(helm, values, check=False)
    assert result.returncode != 0
    assert "metrics.service.enabled" in result.stderr


def test_the_prometheus_rule_carries_its_labels(helm: Runner) -> None:
    rule = the(
        render(helm, prometheusRule={"enabled": True, "labels": {"release": "prometheus"}}),
        "PrometheusRule",
    )
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert [group["name"] for group in rule["spec"]["groups"]] == [
        "kadence-schedules",
        "kadence-queues",
        "kadence-operator",
    ]


def test_the_dashboard_config_map_carries_the_dashboard_for_the_sidecar(helm: Runner) -> None:
    (configmap,) = dashboards(render(helm, dashboard={"enabled": True}))
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert "annotations" not in configmap["metadata"]
    (text,) = configmap["data"].values()
    shipped = (CHART / "files" / "dashboard.json").read_text()
    assert json.loads(text) == json.loads(shipped)
    assert json.loads(text)["uid"] == "kadence"


def test_the_dashboard_label_namespace_and_annotations_come_from_the_values(
    helm: Runner,
) -> None:
    (configmap,) = dashboards(
        render(
            helm,
            dashboard={
                "enabled": True,
                "label": "grafana.com/dashboard",
                "labelValue": "kadence",
                "annotations": {"grafana_folder": "Operators"},
                "namespace": "monitoring",
            },
        )
    )
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["grafana.com/dashboard"] == "kadence"
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["annotations"] == {"grafana_folder": "Operators"}


@pytest.mark.parametrize(
    "metrics",
    [
        {"serviceMonitor": {"enabled": "yes"}},
        {"serviceMonitor": {"interval": "30 seconds"}},
        {"serviceMonitor": {"labels": {"release": 1}}},
        {"serviceMonitor": {"intervall": "30s"}},
        {"prometheusRule": {"consecutiveFailures": 0}},
        {"prometheusRule": {"scheduleLateSeconds": "5m"}},
        {"prometheusRule": {"operatorDownFor": 300}},
        {"prometheusRule": {"deadlinesMissedWindow": "an hour"}},
        {"prometheusRule": {"treshold": 3}},
        {"dashboard": {"labelValue": 1}},
        {"dashboard": {"label": ""}},
    ],
)
def test_the_schema_rejects_bad_monitoring_values(helm: Runner, metrics: dict[str, Any]) -> None:
    result = helm_template(helm, {"metrics": metrics}, check=False)
    assert result.returncode != 0, f"accepted {metrics}"
    assert "schema" in result.stderr.lower()

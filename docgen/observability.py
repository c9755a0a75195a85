"""The metrics and audit-event tables, from the code that defines them: the collectors
`make_metrics()` registers (name, type, labels, help) and the audit trail's `EVENTS`."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from authserver.observability.audit import EVENTS
from authserver.observability.metrics import make_metrics
from docgen.markdown import code, table


def metrics_table() -> str:
    metrics = make_metrics()
    rows: list[list[str]] = []
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        kind = str(value._type)
        name = value._name + ("_total" if kind == "counter" else "")
        labels = ", ".join(code(label) for label in value._labelnames)
        rows.append([code(name), kind, labels, value._documentation])
    return table(["metric", "type", "labels", "meaning"], rows)


def audit_events_table() -> str:
    rows = [[code(event), meaning] for event, meaning in EVENTS.items()]
    return table(["event", "meaning"], rows)

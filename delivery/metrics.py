"""Prometheus metrics of the delivery side: queue depth and age, provider outcomes."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

queue_depth = Gauge("pitchey_delivery_queue_depth", "Jobs waiting in a delivery queue", ["queue"])
queue_oldest_seconds = Gauge(
    "pitchey_delivery_queue_oldest_seconds", "Age of the oldest waiting job", ["queue"]
)
provider_outcomes = Counter(
    "pitchey_email_provider_outcomes_total",
    "Email send attempts by provider and outcome (sent, retry, failed, ...)",
    ["provider", "outcome"],
)

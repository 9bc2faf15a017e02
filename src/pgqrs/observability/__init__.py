"""Seeing into a running system: Prometheus metrics, OpenTelemetry spans, structured logs."""

"""Reading what `/metrics` says, with prometheus_client's own parser (what Prometheus reads)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scraped:
    """One scrape: every sample by (name, labels)."""

    def __init__(self, body: bytes) -> None:
        self.text = body.decode()
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        self.samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in self.families.values()
            for s in f.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """The sample `name{labels}`; 0 when absent (a counter not yet incremented)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def names(self) -> set[str]:
        """Every sample name (`_total`, `_bucket`, `_count`, `_sum` included)."""
        return {name for name, _ in self.samples}

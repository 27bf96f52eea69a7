"""Reading ``/metrics`` in tests: the Prometheus text parsed into samples.

Counters live in one registry per process and every test of a run shares it, so tests compare
two scrapes (`Scrape.delta`) instead of expecting absolute counts; gauges read from the store
belong to the test's own store and are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[Key, float]
    families: dict[str, str]  # name (as in # TYPE) -> type

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples: dict[Key, float] = {}
        families: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            # The parser drops a counter's _total from the family name; its samples keep it.
            name = family.name + ("_total" if family.type == "counter" else "")
            families[name] = family.type
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(text, samples, families)

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when the series is not there (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)

    def labels(self, name: str) -> list[dict[str, str]]:
        """The label sets of a sample name's series."""
        return [dict(labels) for sample, labels in self.samples if sample == name]

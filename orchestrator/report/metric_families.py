"""Counts kept as plain numbers, and the Prometheus metric families a scrape builds from them.

``report.metrics.RunMetrics`` counts a run's events into ints, dicts and ``BucketCounts``, written
by the one event loop thread (no lock: prometheus_client's own ``Counter`` and ``Histogram``
take a lock at every update, two a request, a measurable share of a row's CPU), and turns them
into metric families only when ``/metrics`` is scraped (a custom collector, as prometheus_client
documents for "proxy" metrics). The families are the ones ``Counter`` and ``Histogram`` would
expose, ``_created`` samples included, so the exposition is unchanged.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Mapping

from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString


class BucketCounts:
    """A histogram's counts: one per bucket (not cumulated, ``+Inf``'s last) and their sum."""

    __slots__ = ("bounds", "counts", "created", "les", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = (*map(float, bounds), math.inf)
        self.les = [floatToGoString(b) for b in self.bounds]  # type: ignore[no-untyped-call]
        """The ``le`` label of each bucket, as prometheus_client's ``Histogram`` writes it."""
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.created = time.time()
        """When it started counting (the ``_created`` sample, in Unix seconds)."""

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: the first bound >= value
        self.sum += value

    def family(self, name: str, help_text: str) -> HistogramMetricFamily:
        buckets, seen = [], 0
        for le, count in zip(self.les, self.counts, strict=True):
            seen += count
            buckets.append((le, float(seen)))
        family = HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=self.sum)
        family.samples.append(Sample(f"{name}_created", {}, self.created, None))
        return family


def counter_family(
    name: str,
    help_text: str,
    labels: tuple[str, ...],
    values: Mapping[tuple[str, ...], float],
    created: Mapping[tuple[str, ...], float] | float,
) -> CounterMetricFamily:
    """A counter's family: ``values`` by label values, each with the Unix time its count began
    (``created``: by label values, or one time for all)."""
    family = CounterMetricFamily(name, help_text, labels=labels)
    for key, value in values.items():
        at = created if isinstance(created, float) else created[key]
        family.add_metric(key, value, created=at)
    return family

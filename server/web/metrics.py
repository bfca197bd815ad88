"""``GET /metrics``: what the server is doing, in Prometheus's text format.

The hot path pays nothing: the hub and its driver keep plain integers
(``core/counters.py``, ``HubDriver``'s counters) and this module reads them when scraped.
In one process a custom collector turns them into metric families at each scrape.

Under ``bulletin serve --workers N`` each worker writes prometheus-client's multiprocess
files in the directory its supervisor owns (``server/metricsdir.py``), and whichever worker
answers a scrape reads every worker's files. A custom collector cannot see into other
processes, so there each worker copies its integers once a second into multiprocess
gauges (``livesum``: a dead worker's share drops out when the supervisor marks it dead) and
counters (by what they grew since the last copy); the worker answering copies its own
first. The process metrics become per-worker series (``liveall``, with a ``pid`` label).

Who may read: loopback and ``BULLETIN_METRICS_ALLOW``, judged by the client address uvicorn
settled from the trusted proxies (``forwarded_allow_ips``), never by a header the client
chose; anyone else gets the 404 of an address that does not exist. With
``BULLETIN_METRICS_PORT`` the metrics are served on that port only (with the same check).
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..core import closecodes
from ..core.prepared import Encoding
from ..core.protocol import PUBLIC_STATUSES
from ..live.brokers.base import BrokerState
from ..live.driver import HubDriver
from ..settings import Settings

# The environment variable prometheus-client itself reads (set by the supervisor).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds between copies of a worker's counters into the shared files.
MIRROR_SECONDS = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0)
STREAM_READERS = "bulletin_stream_readers"


@dataclass(frozen=True, slots=True)
class Spec:
    """One metric read from the live state: name (counters without ``_total``), kind, help,
    labels, and how a gauge's values from several workers combine."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()
    mode: Literal["livesum", "livemin"] = "livesum"


LIVE: tuple[Spec, ...] = (
    Spec("bulletin_connections", "gauge",
         "Open live connections (readers and editors), by transport", ("transport",)),
    Spec(STREAM_READERS, "gauge", "Connections following each of the public streams "
         "with the most (BULLETIN_METRICS_STREAMS of them)", ("stream",)),
    Spec("bulletin_subscriptions", "gauge",
         "Subscriptions open now (live, or waiting for their replay)"),
    Spec("bulletin_streams_followed", "gauge",
         "Streams someone follows, counted once per process that has followers"),
    Spec("bulletin_broker_up", "gauge",
         "1 while the broker connection works, else 0 (over workers: the lowest)",
         mode="livemin"),
    Spec("bulletin_db_pool_in_use", "gauge",
         "Database connections checked out of the pool"),
    Spec("bulletin_connections_opened", "counter", "Live connections opened"),
    Spec("bulletin_disconnects", "counter", "Live connections ended: closed by the server "
         "with a close code, or by the peer (code none, reason peer_left)", ("code", "reason")),
    Spec("bulletin_subscribes", "counter", "Subscriptions made"),
    Spec("bulletin_events_published", "counter",
         "Events committed by this server and published"),
    Spec("bulletin_events_fanned_out", "counter",
         "Events applied to followed streams and fanned out (once per event and process)"),
    Spec("bulletin_frames_delivered", "counter", "Writes to subscribers' connections: "
         "events (events that arrived together count once), replays and control frames"),
    Spec("bulletin_resets", "counter",
         "Resets sent (a resume from too far back: the client reloads the stream)"),
    Spec("bulletin_slow_evictions", "counter",
         "Connections closed with 4000 slow: more than BULLETIN_SEND_QUEUE_BYTES unsent"),
    Spec("bulletin_broker_reconnects", "counter",
         "Times the broker connection was made again after it was lost"),
    Spec("bulletin_broker_resyncs", "counter",
         "Resyncs from the broker (it may have lost messages; followed streams are read "
         "again)"),
    Spec("bulletin_gap_reads", "counter",
         "Database reads that mended a gap in a stream's live events"),
    Spec("bulletin_events_repaired", "counter", "Events read from the database by those reads"),
)

Reading = dict[str, list[tuple[tuple[str, ...], float]]]


def read_live(live: HubDriver, streams: int) -> Reading:
    """The live state's values, by metric name: label values and value."""
    hub = live.hub
    counters = hub.counters
    channels = hub.channels
    followers = hub.follower_counts()
    public = [(n, slug) for slug, n in followers.items()
              if channels[slug].status in PUBLIC_STATUSES]
    busiest = heapq.nlargest(streams, public) if streams else []
    disconnects: list[tuple[tuple[str, ...], float]] = [
        ((str(code), _reason(code)), n) for code, n in counters.closed.items()]
    disconnects.append((("none", "peer_left"), counters.left))
    opened = counters.open
    return {
        "bulletin_connections": [
            (("websocket",), opened[Encoding.FRAME] + opened[Encoding.MESSAGE]),
            (("sse",), opened[Encoding.SSE])],
        STREAM_READERS: [((slug,), n) for n, slug in busiest],
        "bulletin_subscriptions": [((), sum(followers.values()))],
        "bulletin_streams_followed": [((), len(channels))],
        "bulletin_broker_up": [((), 1 if live.broker.state is BrokerState.CONNECTED else 0)],
        "bulletin_db_pool_in_use": [((), live.db.pool_in_use())],
        "bulletin_connections_opened": [((), counters.connected)],
        "bulletin_disconnects": disconnects,
        "bulletin_subscribes": [((), counters.subscribed)],
        "bulletin_events_published": [((), live.published)],
        "bulletin_events_fanned_out": [((), counters.events)],
        "bulletin_frames_delivered": [((), counters.frames)],
        "bulletin_resets": [((), counters.resets)],
        "bulletin_slow_evictions": [((), hub.evicted)],
        "bulletin_broker_reconnects": [((), live.broker.reconnects)],
        "bulletin_broker_resyncs": [((), live.resyncs)],
        "bulletin_gap_reads": [((), live.gap_reads)],
        "bulletin_events_repaired": [((), live.repaired)],
    }


def _reason(code: int) -> str:
    known = closecodes.BY_CODE.get(code)
    return known.name if known is not None else "other"


class Metrics:
    """One per app: the registry ``/metrics`` renders, and the metrics measured by calls
    (HTTP requests, delivery latency)."""

    def __init__(self, settings: Settings, *, multiprocess_dir: str | None = None) -> None:
        self.settings = settings
        self.multiprocess_dir = multiprocess_dir
        self.allowed = [ipaddress.ip_network(entry, strict=False)
                        for entry in settings.metrics_allow]
        self.live: HubDriver | None = None
        # No ``_created`` series beside each counter and histogram (they double the text,
        # and the multiprocess mode has none): prometheus-client's own switch, for the
        # process.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        # In multiprocess mode the metrics are read from the files, not from a registry.
        own = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "bulletin_http_requests", "HTTP requests answered, by route template, method "
            "and status (counted when the response starts)", ("route", "method", "status"),
            registry=own)
        self.durations = Histogram(
            "bulletin_http_request_duration_seconds", "Seconds from an HTTP request to the "
            "end of its response, by route template, method and status (event streams not "
            "counted)", ("route", "method", "status"), buckets=HTTP_BUCKETS, registry=own)
        self.latency = Histogram(
            "bulletin_delivery_latency_seconds", "Seconds from an event's commit to the end "
            "of its fan-out to this process's subscribers", buckets=LATENCY_BUCKETS,
            registry=own)
        self._mirror: _Mirror | None = None
        if multiprocess_dir:
            self._mirror = _Mirror(settings.metrics_streams)
            self.registry.register(_Workers(multiprocess_dir, settings.metrics_streams))
        else:
            self.registry.register(_LiveCollector(self))
            ProcessCollector(registry=self.registry)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls, settings: Settings) -> Metrics:
        """Multiprocess mode when the supervisor set up the shared directory."""
        return cls(settings, multiprocess_dir=os.environ.get(MULTIPROC_ENV) or None)

    def start(self, live: HubDriver) -> None:
        """Read ``live`` from now on (and, with several workers, copy it every second)."""
        self.live = live
        live.observe_latency = self.latency.observe
        if self._mirror is not None:
            self._task = asyncio.get_running_loop().create_task(self._copying(live))

    async def stop(self) -> None:
        """Stop measuring; with several workers, take this worker's gauges out of the
        sums (its counters stay), as the supervisor does for a worker that died."""
        if self.live is not None:
            self.live.observe_latency = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self.multiprocess_dir:
            # A worker retired on purpose (a rolling restart) must not leave its readers
            # counted until something else notices.
            mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def allows(self, host: str | None) -> bool:
        """Whether a client at ``host`` may read the metrics."""
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback or any(address in network for network in self.allowed)

    def render(self) -> bytes:
        """The text a scrape gets."""
        if self._mirror is not None and self.live is not None:
            self._mirror.copy(self.live)
        return generate_latest(self.registry)

    async def _copying(self, live: HubDriver) -> None:
        assert self._mirror is not None
        while True:
            self._mirror.copy(live)
            await asyncio.sleep(MIRROR_SECONDS)


class _LiveCollector(Collector):
    """One process: the live state read at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        live = self.metrics.live
        if live is None:
            return
        reading = read_live(live, self.metrics.settings.metrics_streams)
        for spec in LIVE:
            family: Metric = (GaugeMetricFamily if spec.kind == "gauge"
                              else CounterMetricFamily)(spec.name, spec.help, labels=spec.labels)
            for labels, value in reading[spec.name]:
                family.add_metric(labels, value)  # type: ignore[attr-defined]
            yield family


class _Mirror:
    """Several workers: a worker's live state copied into multiprocess metrics."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.gauges = {s.name: Gauge(s.name, s.help, s.labels, registry=None,
                                     multiprocess_mode=s.mode)
                       for s in LIVE if s.kind == "gauge"}
        self.counters = {s.name: Counter(s.name, s.help, s.labels, registry=None)
                         for s in LIVE if s.kind == "counter"}
        # The label values each gauge was given last time (set to 0 when they go away:
        # multiprocess files cannot forget a series), and each counter's last value.
        self.shown: dict[str, set[tuple[str, ...]]] = {name: set() for name in self.gauges}
        self.last: dict[tuple[str, tuple[str, ...]], float] = {}
        self.process = ProcessCollector(registry=None)
        self.memory = Gauge("process_resident_memory_bytes", "Resident memory of each "
                            "worker", registry=None, multiprocess_mode="liveall")
        self.fds = Gauge("process_open_fds", "Open file descriptors of each worker",
                         registry=None, multiprocess_mode="liveall")
        self.cpu = Counter("process_cpu_seconds", "CPU seconds of every worker",
                           registry=None)
        self.cpu_last = 0.0

    def copy(self, live: HubDriver) -> None:
        """Bring this worker's share of the shared files up to its live state."""
        reading = read_live(live, self.streams)
        for name, gauge in self.gauges.items():
            seen = set()
            for labels, value in reading[name]:
                (gauge.labels(*labels) if labels else gauge).set(value)
                seen.add(labels)
            for labels in self.shown[name] - seen:
                gauge.labels(*labels).set(0)
            self.shown[name] = seen
        for name, counter in self.counters.items():
            for labels, value in reading[name]:
                key = (name, labels)
                grown = value - self.last.get(key, 0)
                if grown > 0:
                    (counter.labels(*labels) if labels else counter).inc(grown)
                    self.last[key] = value
        for family in self.process.collect():
            for sample in family.samples:
                if sample.name == "process_resident_memory_bytes":
                    self.memory.set(sample.value)
                elif sample.name == "process_open_fds":
                    self.fds.set(sample.value)
                elif sample.name == "process_cpu_seconds_total" and sample.value > self.cpu_last:
                    self.cpu.inc(sample.value - self.cpu_last)
                    self.cpu_last = sample.value


class _Workers(Collector):
    """Several workers: every worker's files, summed, the busiest streams kept."""

    def __init__(self, path: str, streams: int) -> None:
        self.files = MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        for metric in self.files.collect():  # type: ignore[no-untyped-call]
            if metric.name == STREAM_READERS:
                metric.samples = heapq.nlargest(
                    self.streams, (s for s in metric.samples if s.value > 0),
                    key=lambda s: s.value)
            yield metric

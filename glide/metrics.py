"""A node's Prometheus metrics (prometheus-client), served at ``GET /metrics`` on the HTTP port to the node's
``admin_token`` (a Prometheus ``authorization`` bearer credential).

Nothing is counted on the message path for them beyond what the node counts anyway: a collector reads the
counters the dispatcher, the hub, the store and the driver keep, when Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from glide.api.app import NodeStats
    from glide.dispatch import Dispatcher
    from glide.gateway.gateway import GatewayBase
    from glide.store.base import Store


class NodeCollector(Collector):
    """What one node reports, read at scrape time."""

    def __init__(self, gateway: GatewayBase, dispatcher: Dispatcher, store: Store, stats: NodeStats) -> None:
        self.gateway = gateway
        self.dispatcher = dispatcher
        self.store = store
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        transport = self.gateway.transport_stats()
        yield GaugeMetricFamily("glide_connections", "Client connections open", value=transport["connections"])
        yield GaugeMetricFamily(
            "glide_sessions", "Logged-in sessions (uid, device) on this node", value=self.gateway.hub.online_count()
        )
        yield CounterMetricFamily("glide_logins", "Logins since start", value=self.stats.logins)
        received = CounterMetricFamily(
            "glide_envelopes_received", "Envelopes received from clients, by action", labels=["action"]
        )
        for action, count in sorted(self.dispatcher.received.items()):
            received.add_metric([action], count)
        yield received
        yield CounterMetricFamily(
            "glide_chat_messages_stored", "1:1 messages stored since start", value=self.stats.messages
        )
        yield CounterMetricFamily(
            "glide_store_transactions",
            "Store transactions committed (each holds a batch of writes)",
            value=getattr(self.store, "batches_committed", 0),
        )
        wal_stats = getattr(self.store, "wal_stats", None)
        if wal_stats is not None:  # SQLite: that the WAL keeps starting over under load, not growing
            wal_bytes, restarts = wal_stats()
            yield GaugeMetricFamily("glide_sqlite_wal_bytes", "Size of the SQLite WAL file", value=wal_bytes)
            yield CounterMetricFamily(
                "glide_sqlite_wal_restarts",
                "Times the checkpointer held commits for the WAL's last frames so that it starts over",
                value=restarts,
            )
        yield CounterMetricFamily(
            "glide_frames_sent", "Frames sent to clients (envelopes, heartbeats)", value=transport["frames_out"]
        )
        hub = self.gateway.hub
        rounds, from_nodes = getattr(hub, "rounds", None), getattr(hub, "received", None)
        if rounds is not None and from_nodes is not None:  # a node of a cluster (glide.cluster.hub)
            yield CounterMetricFamily(
                "glide_cluster_rounds",
                "The flusher's round trips to Redis (what goes to other nodes, route releases)",
                value=rounds,
            )
            yield CounterMetricFamily(
                "glide_cluster_messages_received", "Messages received from other nodes through Redis", value=from_nodes
            )
        yield CounterMetricFamily(
            "glide_slow_consumers_dropped",
            "Connections dropped for reading too slowly (send buffer over send_buffer_limit)",
            value=transport["slow_consumers"],
        )


def exposition(collector: Collector) -> Callable[[], bytes]:
    """The text a scrape gets, from a registry of its own (several servers may share a process)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return lambda: generate_latest(registry)

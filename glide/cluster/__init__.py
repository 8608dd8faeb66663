"""Many glide nodes as one server: PostgreSQL holds the truth, Redis the routes between the nodes
(``glide serve --store postgresql://… --redis redis://…``). Needs the ``redis`` extra."""

from glide.cluster.hub import ClusterHub

__all__ = ["ClusterHub"]

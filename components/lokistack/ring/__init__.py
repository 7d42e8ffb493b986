"""The hash ring: which ingesters hold a stream, and how each member announces itself.

Loki's model (reference/loki-write-path.md sections 4 and 8), split so that the hot path stays
small and the Kubernetes parts stay out of it:

- :mod:`~lokistack.ring.model`: immutable member and ring descriptions (``InstanceDesc``,
  ``RingDesc``) shared by every other module;
- :mod:`~lokistack.ring.tokens`: random token generation and the tokens file that lets a restarted
  ingester keep its place in the ring;
- :mod:`~lokistack.ring.replication`: operations, replication sets and the quorum rule;
- :mod:`~lokistack.ring.ring`: the read view that distributors and queriers use per stream, and
  the ``loki_ring_*`` metrics;
- :mod:`~lokistack.ring.lifecycler`: one member's registration, heartbeat and departure;
- :mod:`~lokistack.ring.kv`: where membership lives: in memory (one process) or one Lease per
  member (Kubernetes, docs/ring.md);
- :mod:`~lokistack.ring.http`: the ring status page, rendered without any web framework.

Import the submodules and qualify names (``from lokistack.ring import ring`` then
``ring.Ring``); this package re-exports nothing so that importing it stays cheap.
"""

"""The typed configuration schema: one frozen dataclass per YAML block.

Every component reads its settings from these classes, and the operator renders them into the
ConfigMap, so this module is the single place where a setting's name, type and default live.
Names and defaults follow Loki where Loki has the setting (reference sheets under
``reference/``); where we deviate (``auth_enabled``, ``ingester.flush_on_shutdown``,
``split_queries_by_interval``) docs/configuration.md says why.

The classes hold plain values only.  Anything that depends on the machine (the hostname as ring
instance ID, whether stderr is a terminal, credentials from the environment) is resolved when a
component starts, never here, so importing this module has no side effects.

Type conventions the loader relies on: ``datetime.timedelta`` fields take durations (``30s``),
``Bytes`` fields take sizes (``256KB``), ``Literal`` fields take one of their values, ``tuple[str,
...]`` fields take lists of strings, and fields marked with :data:`SECRET` are redacted when a
config is printed.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Annotated, Final, Literal, get_args


class ByteSize:
    """Marker in ``Annotated[int, ...]`` for integers written as sizes (``1.5MB``)."""

    def __repr__(self) -> str:
        return "ByteSize"


BYTE_SIZE: Final = ByteSize()
Bytes = Annotated[int, BYTE_SIZE]
"""An int counted in bytes, loaded from ``262144`` or ``256KB`` and rendered as ``256KB``."""

SECRET: Final = {"secret": True}
"""Field metadata for values that ``--print-config`` must not show."""

Target = Literal["all", "distributor", "ingester", "querier", "query-frontend", "compactor"]
TARGETS: Final[tuple[Target, ...]] = get_args(Target)
LogLevel = Literal["debug", "info", "warn", "error"]
LogFormat = Literal["auto", "json", "logfmt"]
StorageType = Literal["filesystem", "s3"]
KVStoreName = Literal["memory", "kubernetes"]
ChunkEncoding = Literal["snappy", "gzip", "lz4", "zstd", "none"]
FsyncMode = Literal["group", "always"]
RateStrategy = Literal["global", "local"]

_KIB: Final = 1024
_MIB: Final = 1024 * 1024
_GIB: Final = 1024 * 1024 * 1024


_ZERO: Final = datetime.timedelta(0)

# Loki's default list for service_name discovery (pkg/validation/limits.go).
DEFAULT_DISCOVER_SERVICE_NAME: Final[tuple[str, ...]] = (
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
)


@dataclasses.dataclass(frozen=True)
class Server:
    """HTTP and gRPC listeners and process-wide logging (Loki's ``server`` block)."""

    http_listen_address: str = ""  # "" = every interface, as in Loki
    http_listen_port: int = 3100
    grpc_listen_address: str = ""
    grpc_listen_port: int = 9095
    grpc_server_max_recv_msg_size: Bytes = 4 * _MIB
    grpc_server_max_send_msg_size: Bytes = 4 * _MIB
    # Pings on every gRPC connection this process serves; a peer that does not answer within the
    # timeout is dropped with its calls (a querier on a lost node gives its sub-queries back).
    # Loki's defaults are 2h and 20s; ours notice a silent peer well within a query's timeout.
    grpc_server_keepalive_time: datetime.timedelta = datetime.timedelta(seconds=10)
    grpc_server_keepalive_timeout: datetime.timedelta = datetime.timedelta(seconds=10)
    log_level: LogLevel = "info"
    log_format: LogFormat = "auto"  # auto = JSON unless stderr is a terminal (decided at start)
    graceful_shutdown_timeout: datetime.timedelta = datetime.timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class Filesystem:
    """Object store on a local directory, for one-process mode."""

    directory: str = "./data/objects"  # a directory of its own: keys start with tenant IDs


@dataclasses.dataclass(frozen=True)
class S3:
    """Any S3 API (MinIO, AWS S3).  Credentials: value, then file, then environment."""

    endpoint: str = ""  # host[:port], without scheme; ``insecure`` picks http
    bucket: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = dataclasses.field(default="", metadata=SECRET)
    access_key_id_file: str = ""
    secret_access_key_file: str = ""
    insecure: bool = False
    force_path_style: bool = True
    request_timeout: datetime.timedelta = datetime.timedelta(seconds=30)
    max_retries: int = 3


@dataclasses.dataclass(frozen=True)
class Storage:
    """Where chunks and index files live."""

    type: StorageType = "filesystem"
    filesystem: Filesystem = dataclasses.field(default_factory=Filesystem)
    s3: S3 = dataclasses.field(default_factory=S3)


@dataclasses.dataclass(frozen=True)
class KubernetesKV:
    """Ring membership as one ``coordination.k8s.io`` Lease per member."""

    namespace: str = ""  # "" = the pod's own namespace
    lease_prefix: str = "lokistack-ring"
    # Members whose heartbeat is older than this are removed from the ring.
    forget_after: datetime.timedelta = datetime.timedelta(minutes=2)


@dataclasses.dataclass(frozen=True)
class KVStore:
    """The store that holds a ring's membership."""

    store: KVStoreName = "memory"
    kubernetes: KubernetesKV = dataclasses.field(default_factory=KubernetesKV)


@dataclasses.dataclass(frozen=True)
class Ring:
    """The ingester ring: the lifecycler of each ingester and the view of every ring client."""

    kvstore: KVStore = dataclasses.field(default_factory=KVStore)
    replication_factor: int = 3
    heartbeat_period: datetime.timedelta = datetime.timedelta(seconds=5)
    heartbeat_timeout: datetime.timedelta = datetime.timedelta(minutes=1)
    num_tokens: int = 128
    zone_awareness_enabled: bool = False
    instance_zone: str = ""
    instance_id: str = ""  # "" = the hostname, resolved at start
    instance_addr: str = ""  # "" = the first non-loopback address, resolved at start


def _distributor_kvstore() -> KVStore:
    return KVStore(kubernetes=KubernetesKV(lease_prefix="lokistack-distributor"))


@dataclasses.dataclass(frozen=True)
class DistributorRing:
    """The distributor ring, used only to count healthy distributors for the global rate limit."""

    kvstore: KVStore = dataclasses.field(default_factory=_distributor_kvstore)
    heartbeat_period: datetime.timedelta = datetime.timedelta(seconds=5)
    heartbeat_timeout: datetime.timedelta = datetime.timedelta(minutes=1)
    instance_id: str = ""
    instance_addr: str = ""


@dataclasses.dataclass(frozen=True)
class Distributor:
    """Push API limits and the fan-out to ingesters."""

    ring: DistributorRing = dataclasses.field(default_factory=DistributorRing)
    max_recv_msg_size: Bytes = 100 * _MIB
    max_decompressed_size: Bytes = 0  # 0 = 50 x max_recv_msg_size
    push_timeout: datetime.timedelta = datetime.timedelta(seconds=5)


@dataclasses.dataclass(frozen=True)
class Wal:
    """The ingester's write-ahead log."""

    enabled: bool = True
    dir: str = "./data/wal"
    checkpoint_duration: datetime.timedelta = datetime.timedelta(minutes=5)
    replay_memory_ceiling: Bytes = 4 * _GIB
    fsync: FsyncMode = "group"
    fsync_period: datetime.timedelta = datetime.timedelta(milliseconds=100)
    segment_size: Bytes = 128 * _MIB


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Retry timing of a failed flush (Loki's ``flush_op_backoff``): the wait starts at
    ``min_period``, doubles up to ``max_period``, for at most ``max_retries`` attempts; a chunk
    that still fails stays in memory and the WAL and is tried again by the next sweep."""

    min_period: datetime.timedelta = datetime.timedelta(seconds=10)
    max_period: datetime.timedelta = datetime.timedelta(minutes=1)
    max_retries: int = 10


@dataclasses.dataclass(frozen=True)
class Ingester:
    """In-memory streams, chunk cutting, flushing and the local index head."""

    chunk_block_size: Bytes = 256 * _KIB
    chunk_target_size: Bytes = 1536 * _KIB
    chunk_encoding: ChunkEncoding = "snappy"
    chunk_idle_period: datetime.timedelta = datetime.timedelta(minutes=30)
    max_chunk_age: datetime.timedelta = datetime.timedelta(hours=2)
    chunk_retain_period: datetime.timedelta = _ZERO
    flush_check_period: datetime.timedelta = datetime.timedelta(seconds=30)
    concurrent_flushes: int = 32
    flush_op_timeout: datetime.timedelta = datetime.timedelta(minutes=10)
    flush_op_backoff: Backoff = dataclasses.field(default_factory=Backoff)
    flush_on_shutdown: bool = True
    index_dir: str = "./data/index"
    index_seal_period: datetime.timedelta = datetime.timedelta(minutes=15)
    wal: Wal = dataclasses.field(default_factory=Wal)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-tenant limits: the defaults here, per-tenant overrides in the runtime config."""

    # Write path
    ingestion_rate_strategy: RateStrategy = "global"
    ingestion_rate_mb: float = 4.0
    ingestion_burst_size_mb: float = 6.0
    max_line_size: Bytes = 256 * _KIB
    max_line_size_truncate: bool = False
    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    reject_old_samples: bool = True
    reject_old_samples_max_age: datetime.timedelta = datetime.timedelta(hours=168)
    creation_grace_period: datetime.timedelta = datetime.timedelta(minutes=10)
    allow_structured_metadata: bool = True
    max_structured_metadata_size: Bytes = 64 * _KIB
    max_structured_metadata_entries_count: int = 128
    max_global_streams_per_user: int = 5000
    max_streams_per_user: int = 0
    per_stream_rate_limit: Bytes = 3 * _MIB
    per_stream_rate_limit_burst: Bytes = 15 * _MIB
    discover_service_name: tuple[str, ...] = DEFAULT_DISCOVER_SERVICE_NAME
    discover_log_levels: bool = True
    # Read path
    max_entries_limit_per_query: int = 5000
    max_query_length: datetime.timedelta = datetime.timedelta(hours=721)
    max_query_lookback: datetime.timedelta = _ZERO
    max_query_series: int = 500
    query_timeout: datetime.timedelta = datetime.timedelta(minutes=1)
    max_query_parallelism: int = 32
    split_queries_by_interval: datetime.timedelta = datetime.timedelta(minutes=30)
    max_cache_freshness_per_query: datetime.timedelta = datetime.timedelta(minutes=10)
    max_concurrent_tail_requests: int = 10
    # Compactor
    retention_period: datetime.timedelta = _ZERO


@dataclasses.dataclass(frozen=True)
class Engine:
    """LogQL engine settings."""

    max_look_back_period: datetime.timedelta = datetime.timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class Querier:
    """Query execution: which sources to ask, and how queriers find their frontends."""

    query_ingesters_within: datetime.timedelta = datetime.timedelta(hours=3)
    max_concurrent: int = 4
    frontend_addresses: tuple[str, ...] = ()
    frontend_dns: str = ""
    frontend_dns_refresh_period: datetime.timedelta = datetime.timedelta(seconds=3)
    tail_max_duration: datetime.timedelta = datetime.timedelta(hours=1)
    chunk_cache_size: Bytes = 100 * _MIB
    index_cache_dir: str = "./data/index-cache"
    engine: Engine = dataclasses.field(default_factory=Engine)


@dataclasses.dataclass(frozen=True)
class ResultsCache:
    """The query frontend's in-memory cache of metric query results."""

    enabled: bool = True
    max_size_bytes: Bytes = 100 * _MIB
    ttl: datetime.timedelta = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True)
class Frontend:
    """Splitting, per-tenant queueing and retries in the query frontend."""

    max_outstanding_per_tenant: int = 4096
    max_retries: int = 5
    align_queries_with_step: bool = False
    log_queries_longer_than: datetime.timedelta = _ZERO
    tail_proxy_url: str = ""  # a querier's http://host:port; "" = the frontend serves no tail
    results_cache: ResultsCache = dataclasses.field(default_factory=ResultsCache)


@dataclasses.dataclass(frozen=True)
class Compactor:
    """Index compaction and retention."""

    working_directory: str = "./data/compactor"
    compaction_interval: datetime.timedelta = datetime.timedelta(minutes=10)
    retention_enabled: bool = False
    delete_delay: datetime.timedelta = datetime.timedelta(hours=2)


@dataclasses.dataclass(frozen=True)
class RuntimeConfigFile:
    """Where the hot-reloaded per-tenant overrides come from."""

    file: str = ""
    period: datetime.timedelta = datetime.timedelta(seconds=10)


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration of one ``lokistack`` process."""

    target: Target = "all"
    auth_enabled: bool = False
    server: Server = dataclasses.field(default_factory=Server)
    storage: Storage = dataclasses.field(default_factory=Storage)
    ring: Ring = dataclasses.field(default_factory=Ring)
    distributor: Distributor = dataclasses.field(default_factory=Distributor)
    ingester: Ingester = dataclasses.field(default_factory=Ingester)
    limits: Limits = dataclasses.field(default_factory=Limits)
    querier: Querier = dataclasses.field(default_factory=Querier)
    frontend: Frontend = dataclasses.field(default_factory=Frontend)
    compactor: Compactor = dataclasses.field(default_factory=Compactor)
    runtime_config: RuntimeConfigFile = dataclasses.field(default_factory=RuntimeConfigFile)

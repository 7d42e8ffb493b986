"""The LokiStack spec model: one frozen dataclass per object of the CRD's ``spec``.

Field names are the Loki Operator's (``size``, ``storage.secret``, ``storageClassName``,
``replication``, ``limits``, ``template``, ``managementState``) in their snake_case form; the
camelCase JSON names are derived (:func:`specfields.camel`).  Each field's description and
validation live in its :func:`~specfields.field` declaration, which both the decoder
(:func:`lokistack_operator.spec.parse_spec`) and ``tools/gencrd.py`` (the CRD schema) read.

Size-dependent values (replicas, resources, limits, replication factor) are ``None`` here when
the user leaves them out; :mod:`lokistack_operator.spec` merges the size preset under them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from lokistack_operator.specfields import FrozenMap, Rule, field, spec_dataclass

Size = Literal["1x.demo", "1x.pico", "1x.extra-small", "1x.small", "1x.medium"]
SIZE_NAMES: Final[tuple[Size, ...]] = get_args(Size)
ManagementState = Literal["Managed", "Unmanaged"]
MANAGEMENT_STATES: Final[tuple[ManagementState, ...]] = get_args(ManagementState)
Component = Literal["distributor", "ingester", "querier", "query-frontend", "compactor"]
COMPONENTS: Final[tuple[Component, ...]] = get_args(Component)
SchemaVersion = Literal["v11", "v12", "v13"]

DNS_SUBDOMAIN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Services are named <stack>-query-frontend-http and must be DNS-1035 labels (63 characters).
MAX_STACK_NAME: Final = 63 - len("-query-frontend-http")
STACK_NAME: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
TENANT_ID: Final = r"^[A-Za-z0-9!\-_.*'()]{1,150}$"
_QUANTITY: Final = "Kubernetes resource quantities by resource name (cpu, memory, ...)"
_PER_SIZE: Final = "Default: per size."

ROOT_RULES: Final = (
    Rule(
        f"self.metadata.name.matches('{STACK_NAME}') && size(self.metadata.name) <= "
        f"{MAX_STACK_NAME}",
        f"a LokiStack name must start with a letter, contain only lowercase letters, digits "
        f"and '-', and be at most {MAX_STACK_NAME} characters long (its Services are named "
        f"<name>-<component>-http)",
    ),
)


@spec_dataclass
class ObjectStorageSecret:
    """The Secret, in the LokiStack's namespace, that holds the object storage settings."""

    name: str = field(
        "Name of the Secret with the keys endpoint, bucketnames, access_key_id, "
        "access_key_secret and optionally region and forcepathstyle.",
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    type: Literal["s3"] = field("Object storage type. Only s3 (MinIO, AWS S3).", default="s3")


@spec_dataclass
class ObjectStorageSchema:
    """One schema version and the UTC date from which it applies."""

    version: SchemaVersion = field("Schema version (the Loki Operator's names).")
    effective_date: str = field(
        "Date (YYYY-MM-DD, UTC) from which this schema applies.", kind="date", max_length=10
    )


DEFAULT_SCHEMAS: Final = (ObjectStorageSchema(version="v13", effective_date="2020-10-11"),)


@spec_dataclass
class ObjectStorageSpec:
    """Where chunks and index files are stored."""

    secret: ObjectStorageSecret = field("The storage Secret.")
    schemas: tuple[ObjectStorageSchema, ...] = field(
        "Schema versions by effective date. Lokistack has one storage format; the list is "
        "kept for compatibility with Loki Operator manifests and reported in status.",
        default=DEFAULT_SCHEMAS,
        min_items=1,
        max_items=32,
        list_map_keys=("effective_date",),
    )


@spec_dataclass
class ZoneSpec:
    """A failure domain that pods are spread across."""

    topology_key: str = field(
        "Node label whose values name the zones (e.g. topology.kubernetes.io/zone).",
        max_length=316,
    )
    max_skew: int = field(
        "Largest allowed difference in pod count between two zones.", default=1, minimum=1
    )


@spec_dataclass
class ReplicationSpec:
    """How many copies of each stream the ingesters keep, and where."""

    factor: int | None = field(
        "Replication factor: ingesters that receive each stream; writes need a quorum of "
        f"floor(factor/2)+1. {_PER_SIZE}",
        default=None,
        minimum=1,
    )
    zones: tuple[ZoneSpec, ...] = field(
        "Spread every component's pods across these topology domains (DoNotSchedule).",
        default=(),
        max_items=8,
        list_map_keys=("topology_key",),
    )


def _limit(description: str, **info: Any) -> Any:
    return field(description, default=None, minimum=0, **info)


@spec_dataclass
class IngestionLimits:
    """Write-path limits."""

    ingestion_rate: int | None = _limit("Per-tenant ingestion rate in MB/s (global strategy).")
    ingestion_burst_size: int | None = _limit("Per-tenant ingestion burst size in MB.")
    max_label_name_length: int | None = _limit("Longest label name, in characters.")
    max_label_value_length: int | None = _limit("Longest label value, in characters.")
    max_label_names_per_series: int | None = _limit("Most labels one stream may have.")
    max_global_streams_per_tenant: int | None = _limit(
        "Active streams per tenant across the cluster; 0 disables the limit."
    )
    max_line_size: int | None = _limit("Longest log line, in bytes.")
    per_stream_rate_limit: int | None = _limit("Ingestion rate of one stream, in MB/s.")
    per_stream_rate_limit_burst: int | None = _limit("Burst of one stream, in MB.")


@spec_dataclass
class QueryLimits:
    """Read-path limits."""

    max_entries_limit_per_query: int | None = _limit("Largest limit a log query may ask for.")
    max_chunks_per_query: int | None = _limit(
        "Accepted for Loki Operator compatibility; not enforced by Lokistack yet."
    )
    max_query_series: int | None = _limit("Most series a metric query may return.")
    query_timeout: str | None = field(
        "Deadline of one query, as a duration (e.g. 3m).",
        default=None,
        kind="duration",
        max_length=32,
    )


@spec_dataclass
class LimitsTemplate:
    """A set of limits; every field left out falls back to the global value or the size preset."""

    ingestion: IngestionLimits = field("Write-path limits.", default_factory=IngestionLimits)
    queries: QueryLimits = field("Read-path limits.", default_factory=QueryLimits)


@spec_dataclass
class LimitsSpec:
    """Limits for every tenant, and overrides per tenant (hot-reloaded, no restart)."""

    global_: LimitsTemplate = field(
        f"Limits for every tenant. {_PER_SIZE}", json_name="global", default_factory=LimitsTemplate
    )
    tenants: Mapping[str, LimitsTemplate] = field(
        "Overrides by tenant ID; rendered into the runtime config, so changing them restarts "
        "no pod.",
        default_factory=FrozenMap,
    )


@spec_dataclass
class Toleration:
    """A Kubernetes toleration."""

    key: str | None = field("Taint key; empty with operator Exists matches all.", default=None)
    operator: Literal["Exists", "Equal"] | None = field("Default: Equal.", default=None)
    value: str | None = field("Taint value (operator Equal).", default=None)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = field(
        "Taint effect to match; empty matches all.", default=None
    )
    toleration_seconds: int | None = field("How long a NoExecute taint is tolerated.", default=None)


TOLERATION_RULES: Final = (
    Rule("!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
         "|| self.value == ''", "a toleration with operator Exists must not have a value"),
    Rule("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
         "tolerationSeconds requires effect NoExecute"),
)  # fmt: skip


@spec_dataclass
class ResourceRequirements:
    """Compute resources; requests are merged over the size preset, limits are taken as given."""

    requests: Mapping[str, str] = field(
        f"{_QUANTITY}, merged over the size preset.", default_factory=FrozenMap, kind="quantity"
    )
    limits: Mapping[str, str] = field(
        f"{_QUANTITY}. A limit below the preset's request lowers that request.",
        default_factory=FrozenMap,
        kind="quantity",
    )


@spec_dataclass
class ComponentTemplate:
    """Scheduling and sizing of one component's pods."""

    replicas: int | None = field(
        f"Number of pods. {_PER_SIZE} The compactor always runs exactly one.",
        default=None,
        minimum=1,
    )
    node_selector: Mapping[str, str] = field(
        "Node labels the pods must run on.", default_factory=FrozenMap
    )
    tolerations: tuple[Toleration, ...] = field(
        "Taints the pods tolerate.", default=(), max_items=64, rules=TOLERATION_RULES
    )
    pod_anti_affinity: Mapping[str, Any] | None = field(
        "A Kubernetes PodAntiAffinity that replaces the default (prefer one pod of a component "
        "per node).",
        default=None,
        kind="object",
    )
    resources: ResourceRequirements | None = field(
        "Resource requests and limits (a Lokistack addition to the Loki Operator's fields).",
        default=None,
    )


def _template(component: str) -> Any:
    return field(f"The {component}.", default_factory=ComponentTemplate)


@spec_dataclass
class TemplateSpec:
    """Per-component overrides of the size preset."""

    distributor: ComponentTemplate = _template("distributor")
    ingester: ComponentTemplate = _template("ingester")
    querier: ComponentTemplate = _template("querier")
    query_frontend: ComponentTemplate = _template("query frontend")
    compactor: ComponentTemplate = _template("compactor")
    use_requests_as_limits: bool = field(
        "Set every resource limit equal to its request (unless given in resources.limits).",
        default=False,
    )

    def for_component(self, component: Component) -> ComponentTemplate:
        template: ComponentTemplate = getattr(self, component.replace("-", "_"))
        return template


@spec_dataclass
class LokiStackSpec:
    """The desired state of a Lokistack deployment."""

    management_state: ManagementState = field(
        "Unmanaged stops the operator from changing the stack's objects.", default="Managed"
    )
    size: Size = field("T-shirt size: replicas, resources and default limits of the stack.")
    storage: ObjectStorageSpec = field("Object storage for chunks and index files.")
    storage_class_name: str | None = field(
        "StorageClass of the ingester and compactor volumes. Default: the cluster's default.",
        default=None,
        pattern=DNS_SUBDOMAIN,
        max_length=253,
    )
    replication: ReplicationSpec = field(
        "Replication factor and zones.", default_factory=ReplicationSpec
    )
    limits: LimitsSpec = field("Global and per-tenant limits.", default_factory=LimitsSpec)
    template: TemplateSpec = field(
        "Per-component replicas, scheduling and resources.", default_factory=TemplateSpec
    )

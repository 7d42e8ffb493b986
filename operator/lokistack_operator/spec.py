"""The typed LokiStack spec: parsing, the size presets and the effective values.

:func:`parse_spec` turns the ``spec`` of a LokiStack object into a frozen
:class:`~lokistack_operator.specmodel.LokiStackSpec` (the model and its field declarations live in
:mod:`~lokistack_operator.specmodel`), applying the static defaults and raising
:class:`SpecError` with the field path on anything the CRD would reject, plus the rules that
involve several fields.

Size-dependent values stay ``None`` in the parsed spec; the ``effective_*`` functions merge the
:data:`SIZES` preset under the user's values, as the Loki Operator does: user values win and the
compactor always runs exactly one replica.  The presets follow the Loki Operator's table
(``operator/internal/manifests/internal/sizes.go``) for the components Lokistack has.
"""

from __future__ import annotations

import dataclasses
import decimal
import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from lokistack_operator.specfields import FrozenMap, Rule, SpecError, decode_dataclass
from lokistack_operator.specmodel import (
    COMPONENTS,
    MANAGEMENT_STATES,
    MAX_STACK_NAME,
    ROOT_RULES,
    SIZE_NAMES,
    STACK_NAME,
    TENANT_ID,
    TOLERATION_RULES,
    Component,
    ComponentTemplate,
    IngestionLimits,
    LimitsSpec,
    LimitsTemplate,
    LokiStackSpec,
    ManagementState,
    ObjectStorageSchema,
    ObjectStorageSecret,
    ObjectStorageSpec,
    QueryLimits,
    ReplicationSpec,
    ResourceRequirements,
    Size,
    TemplateSpec,
    Toleration,
    ZoneSpec,
)

__all__ = [
    "COMPONENTS",
    "MANAGEMENT_STATES",
    "MAX_STACK_NAME",
    "REPLICATION_MESSAGE",
    "ROOT_RULES",
    "SIZES",
    "SIZE_NAMES",
    "Component",
    "ComponentTemplate",
    "IngestionLimits",
    "LimitsSpec",
    "LimitsTemplate",
    "LokiStackSpec",
    "ManagementState",
    "ObjectStorageSchema",
    "ObjectStorageSecret",
    "ObjectStorageSpec",
    "QueryLimits",
    "ReplicationSpec",
    "ResourceRequirements",
    "Size",
    "SizePreset",
    "SpecError",
    "TemplateSpec",
    "Toleration",
    "ZoneSpec",
    "effective_limits",
    "effective_replicas",
    "effective_replication_factor",
    "effective_resources",
    "overlay_limits",
    "parse_quantity",
    "parse_spec",
    "replication_rule",
    "validate_stack_name",
]

REPLICATION_MESSAGE: Final = "replication factor must not exceed the number of ingester replicas"


@dataclasses.dataclass(frozen=True)
class SizePreset:
    """What a size gives a stack when its spec leaves a value out."""

    replicas: Mapping[Component, int]
    requests: Mapping[Component, Mapping[str, str]]  # no limits: the Loki Operator sets none
    limits: LimitsTemplate
    replication_factor: int
    wal_volume_size: str  # the ingester's volume (WAL, index head, ring tokens)
    compactor_volume_size: str = "10Gi"


def _replicas(
    distributor: int, ingester: int, querier: int, frontend: int
) -> Mapping[Component, int]:
    return FrozenMap(
        {
            "distributor": distributor,
            "ingester": ingester,
            "querier": querier,
            "query-frontend": frontend,
            "compactor": 1,
        }
    )


def _requests(*pairs: tuple[str, str]) -> Mapping[Component, Mapping[str, str]]:
    # Order: ingester, distributor, querier, query-frontend, compactor (the reference's rows).
    order: tuple[Component, ...] = (
        "ingester",
        "distributor",
        "querier",
        "query-frontend",
        "compactor",
    )
    return FrozenMap(
        {
            component: FrozenMap({"cpu": cpu, "memory": memory})
            for component, (cpu, memory) in zip(order, pairs, strict=True)
        }
    )


def _limits(rate: int, burst: int, streams: int | None) -> LimitsTemplate:
    return LimitsTemplate(
        ingestion=IngestionLimits(
            ingestion_rate=rate,
            ingestion_burst_size=burst,
            max_label_name_length=1024,
            max_label_value_length=2048,
            max_label_names_per_series=30,
            max_global_streams_per_tenant=streams,
            max_line_size=256000,
            per_stream_rate_limit=5,
            per_stream_rate_limit_burst=15,
        ),
        queries=QueryLimits(
            max_entries_limit_per_query=5000,
            max_chunks_per_query=2_000_000,
            max_query_series=500,
            query_timeout="3m",
        ),
    )


SIZES: Final[Mapping[Size, SizePreset]] = FrozenMap({
    "1x.demo": SizePreset(
        replicas=_replicas(1, 1, 1, 1), requests=FrozenMap(), limits=_limits(4, 6, None),
        replication_factor=1, wal_volume_size="10Gi",
    ),
    "1x.pico": SizePreset(
        replicas=_replicas(2, 3, 2, 2),
        requests=_requests(("500m", "3Gi"), ("500m", "500Mi"), ("750m", "1536Mi"),
                           ("500m", "500Mi"), ("500m", "500Mi")),
        limits=_limits(4, 6, 10000), replication_factor=2, wal_volume_size="150Gi",
    ),
    "1x.extra-small": SizePreset(
        replicas=_replicas(2, 3, 2, 2),
        requests=_requests(("1", "5376Mi"), ("1", "1Gi"), ("1500m", "3Gi"),
                           ("1", "1Gi"), ("1", "2Gi")),
        limits=_limits(4, 6, 10000), replication_factor=2, wal_volume_size="150Gi",
    ),
    "1x.small": SizePreset(
        replicas=_replicas(2, 3, 2, 2),
        requests=_requests(("2500m", "13568Mi"), ("2", "2Gi"), ("4", "4Gi"),
                           ("4", "2560Mi"), ("2", "4Gi")),
        limits=_limits(15, 20, 10000), replication_factor=2, wal_volume_size="150Gi",
    ),
    "1x.medium": SizePreset(
        replicas=_replicas(2, 3, 3, 2),
        requests=_requests(("6", "30Gi"), ("2", "2Gi"), ("6", "10Gi"),
                           ("4", "2560Mi"), ("2", "4Gi")),
        limits=_limits(50, 20, 25000), replication_factor=2, wal_volume_size="150Gi",
    ),
})  # fmt: skip


# -- effective values


def effective_replicas(spec: LokiStackSpec, component: Component) -> int:
    """The component's pod count: the template's, else the size's; the compactor is always 1."""
    if component == "compactor":
        return 1
    replicas = spec.template.for_component(component).replicas
    return SIZES[spec.size].replicas[component] if replicas is None else replicas


def effective_replication_factor(spec: LokiStackSpec) -> int:
    factor = spec.replication.factor
    return SIZES[spec.size].replication_factor if factor is None else factor


_QUANTITY_SUFFIXES: Final[Mapping[str, decimal.Decimal]] = {
    "": decimal.Decimal(1),
    "n": decimal.Decimal("1e-9"),
    "u": decimal.Decimal("1e-6"),
    "m": decimal.Decimal("1e-3"),
    "k": decimal.Decimal("1e3"),
    "M": decimal.Decimal("1e6"),
    "G": decimal.Decimal("1e9"),
    "T": decimal.Decimal("1e12"),
    "P": decimal.Decimal("1e15"),
    "E": decimal.Decimal("1e18"),
    **{s: decimal.Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},  # noqa: E501
}  # fmt: skip
_QUANTITY: Final = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([numkMGTPE]i?|Ki)?")


def parse_quantity(text: str) -> decimal.Decimal:
    """The value of a Kubernetes quantity (``500m`` is 0.5, ``2Gi`` is 2147483648)."""
    match = _QUANTITY.fullmatch(text.strip())
    suffix = (match.group(2) or "") if match else ""
    if match is None or suffix not in _QUANTITY_SUFFIXES:
        raise ValueError(f"not a resource quantity: {text!r}")
    return decimal.Decimal(match.group(1)) * _QUANTITY_SUFFIXES[suffix]


def effective_resources(spec: LokiStackSpec, component: Component) -> dict[str, dict[str, str]]:
    """The container's ``resources``: preset requests under the template's, then its limits.

    A limit the user sets without a request for the same resource lowers the preset's request
    to the limit when the request is larger (a request may not exceed its limit).
    ``useRequestsAsLimits`` copies the requests to limits the user did not set.
    """
    resources = spec.template.for_component(component).resources or ResourceRequirements()
    requests = dict(SIZES[spec.size].requests.get(component, {}))
    requests.update(resources.requests)
    for name, limit in resources.limits.items():
        lowered = name in requests and name not in resources.requests
        if lowered and parse_quantity(requests[name]) > parse_quantity(limit):
            requests[name] = limit
    limits = dict(requests) if spec.template.use_requests_as_limits else {}
    limits.update(resources.limits)
    result: dict[str, dict[str, str]] = {}
    if limits:
        result["limits"] = dict(sorted(limits.items()))
    if requests:
        result["requests"] = dict(sorted(requests.items()))
    return result


L = TypeVar("L", IngestionLimits, QueryLimits)


def _overlay(base: L, top: L) -> L:
    changes = {
        item.name: getattr(top, item.name)
        for item in dataclasses.fields(top)
        if getattr(top, item.name) is not None
    }
    return dataclasses.replace(base, **changes)


def overlay_limits(base: LimitsTemplate, top: LimitsTemplate) -> LimitsTemplate:
    """``base`` with every field that ``top`` sets replaced by ``top``'s value."""
    return LimitsTemplate(
        ingestion=_overlay(base.ingestion, top.ingestion),
        queries=_overlay(base.queries, top.queries),
    )


def effective_limits(spec: LokiStackSpec) -> LimitsTemplate:
    """The global limits: the size's defaults under ``limits.global``."""
    return overlay_limits(SIZES[spec.size].limits, spec.limits.global_)


# -- parsing and the rules that involve several fields


def validate_stack_name(name: str) -> None:
    """The CRD's rule on ``metadata.name``, for callers that did not go through the CRD."""
    if not re.fullmatch(STACK_NAME, name) or len(name) > MAX_STACK_NAME:
        raise SpecError("metadata.name", ROOT_RULES[0].message)


def _size_expression(values: Mapping[Size, int]) -> str:
    """A CEL expression for a per-size number: ``self.size == '1x.demo' ? 1 : 3``."""
    expression = str(values[SIZE_NAMES[-1]])
    for size in reversed(SIZE_NAMES[:-1]):
        if values[size] != values[SIZE_NAMES[-1]]:
            expression = f"(self.size == '{size}' ? {values[size]} : {expression})"
    return expression


def replication_rule() -> Rule:
    """The CRD rule on ``spec``: effective replication factor <= effective ingester replicas."""
    factor = (
        "(has(self.replication) && has(self.replication.factor) ? self.replication.factor : "
        f"{_size_expression({s: p.replication_factor for s, p in SIZES.items()})})"
    )
    replicas = (
        "(has(self.template) && has(self.template.ingester) && "
        "has(self.template.ingester.replicas) ? self.template.ingester.replicas : "
        f"{_size_expression({s: p.replicas['ingester'] for s, p in SIZES.items()})})"
    )
    return Rule(
        f"{factor} <= {replicas}",
        REPLICATION_MESSAGE,
        field_path=".replication.factor",
    )


def _replication_message(factor: int, replicas: int) -> str:
    # The CRD cannot say the numbers: a messageExpression with string() exceeds the CEL budget.
    return (
        f"replication factor ({factor}) must not exceed the number of ingester replicas "
        f"({replicas})"
    )


def parse_spec(spec: Mapping[str, Any]) -> LokiStackSpec:
    """Decode and check a LokiStack ``spec``; raises :class:`SpecError` naming the field."""
    parsed = decode_dataclass(LokiStackSpec, spec, "spec")
    for tenant in parsed.limits.tenants:
        if not re.fullmatch(TENANT_ID, tenant) or tenant in {".", ".."}:
            raise SpecError(
                f"spec.limits.tenants.{tenant}",
                "a tenant ID has 1 to 150 letters, digits and !-_.*'() and is not . or ..",
            )
    for component in COMPONENTS:
        template = parsed.template.for_component(component)
        path = "spec.template." + {"query-frontend": "queryFrontend"}.get(component, component)
        _check_resources(template, path)
        _check_anti_affinity(template, path)
        _check_tolerations(template, path)
    factor = effective_replication_factor(parsed)
    ingesters = effective_replicas(parsed, "ingester")
    if factor > ingesters:
        raise SpecError("spec.replication.factor", _replication_message(factor, ingesters))
    return parsed


def _check_resources(template: ComponentTemplate, path: str) -> None:
    if template.resources is None:
        return
    for name, request in template.resources.requests.items():
        limit = template.resources.limits.get(name)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            raise SpecError(
                f"{path}.resources.requests.{name}",
                f"request {request} is larger than the limit {limit}",
            )


def _check_tolerations(template: ComponentTemplate, path: str) -> None:
    # The same rules as specmodel.TOLERATION_RULES, which the API server evaluates.
    for index, toleration in enumerate(template.tolerations):
        if toleration.operator == "Exists" and toleration.value:
            raise SpecError(f"{path}.tolerations[{index}]", TOLERATION_RULES[0].message)
        if toleration.toleration_seconds is not None and toleration.effect != "NoExecute":
            raise SpecError(f"{path}.tolerations[{index}]", TOLERATION_RULES[1].message)


_AFFINITY_TERMS: Final = (
    "preferredDuringSchedulingIgnoredDuringExecution",
    "requiredDuringSchedulingIgnoredDuringExecution",
)


def _check_anti_affinity(template: ComponentTemplate, path: str) -> None:
    affinity = template.pod_anti_affinity
    for key, terms in (affinity or {}).items():
        if key not in _AFFINITY_TERMS:
            expected = ", ".join(_AFFINITY_TERMS)
            raise SpecError(
                f"{path}.podAntiAffinity.{key}", f"unknown field (expected one of: {expected})"
            )
        if not isinstance(terms, tuple) or not all(isinstance(t, Mapping) for t in terms):
            raise SpecError(f"{path}.podAntiAffinity.{key}", "expected a list of objects")

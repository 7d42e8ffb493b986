"""Binary operators on step vectors and scalars, with Prometheus vector matching.

Arithmetic (``+ - * / % ^``) uses Loki's ``MergeBinOp`` element semantics, shared with the
parser's constant folding (:func:`lokistack.logql.syntax.parser_metric.fold`): ``x / 0`` and
``x % 0`` are NaN, ``^`` is Go's ``math.Pow``. Comparisons filter samples, keeping the left
value (or the vector's value when the scalar is on the left), unless ``bool`` turns them into
1/0. Set operators ``and``/``or``/``unless`` compare label signatures only.

Vector-vector matching follows Prometheus, as Loki does: the signature is the ``on (…)`` labels
or every label but the ``ignoring (…)`` ones; one-to-one results keep the ``on`` labels (or drop
the ignored ones); ``group_left``/``group_right`` keep the "many" side's labels plus the
``include`` labels of the "one" side; a duplicate on the "one" side is the many-to-many error,
and duplicates that would give two results for one label set are refused with Prometheus'
texts.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from lokistack.logql.engine import errors, samples
from lokistack.logql.engine.vector_agg import METRIC_NAME, StepVector
from lokistack.logql.syntax import ast, parser_metric
from lokistack.model import labels as model_labels

_ARITHMETIC = frozenset(
    {ast.BinOp.ADD, ast.BinOp.SUB, ast.BinOp.MUL, ast.BinOp.DIV, ast.BinOp.MOD, ast.BinOp.POW}
)


def element(op: ast.BinOp, left: float, right: float) -> tuple[float, bool]:
    """``(value, keep)`` of one pair: comparisons keep ``left`` when true."""
    if op.is_comparison:
        return left, parser_metric.fold(op, left, right) == 1.0
    return parser_metric.fold(op, left, right), True


def scalar_scalar(node: ast.BinaryOp, left: float, right: float) -> float:
    """Two scalars (only reachable when folding did not happen): always a number."""
    return parser_metric.fold(node.op, left, right)


def _drop_name(labels: samples.Labels) -> samples.Labels:
    if any(name == METRIC_NAME for name, _ in labels):
        return tuple(p for p in labels if p[0] != METRIC_NAME)
    return labels


def vector_scalar(
    node: ast.BinaryOp, vector: StepVector, scalar: float, scalar_left: bool
) -> StepVector:
    """``vector op scalar`` or ``scalar op vector`` (``scalar_left``)."""
    op = node.op
    drop_name = op in _ARITHMETIC or node.bool_modifier
    out: StepVector = {}
    for labels, value in vector.items():
        left, right = (scalar, value) if scalar_left else (value, scalar)
        result, keep = element(op, left, right)
        if op.is_comparison:
            if node.bool_modifier:
                result, keep = (1.0 if keep else 0.0), True
            else:
                result = value
        if keep:
            out[_drop_name(labels) if drop_name else labels] = result
    return out


def signature_function(matching: ast.VectorMatching) -> Callable[[samples.Labels], samples.Labels]:
    """The matching key of a label set under ``on``/``ignoring``, cached per label set."""
    names: Collection[str] = frozenset(matching.labels)
    cache: dict[samples.Labels, samples.Labels] = {}

    def signature(labels: samples.Labels) -> samples.Labels:
        key = cache.get(labels)
        if key is None:
            if matching.on:
                key = tuple(p for p in labels if p[0] in names)
            else:
                key = tuple(p for p in labels if p[0] not in names and p[0] != METRIC_NAME)
            cache[labels] = key
        return key

    return signature


def set_operation(node: ast.BinaryOp, lhs: StepVector, rhs: StepVector) -> StepVector:
    """``and``, ``or``, ``unless`` by signature; labels and values pass through."""
    signature = signature_function(node.matching)
    if node.op is ast.BinOp.OR:
        out = dict(lhs)
        left_sigs = {signature(labels) for labels in lhs}
        for labels, value in rhs.items():
            if signature(labels) not in left_sigs:
                out.setdefault(labels, value)
        return out
    right_sigs = {signature(labels) for labels in rhs}
    wanted = node.op is ast.BinOp.AND
    return {k: v for k, v in lhs.items() if (signature(k) in right_sigs) == wanted}


def _result_labels(many: samples.Labels, one: samples.Labels, node: ast.BinaryOp) -> samples.Labels:
    """Prometheus ``resultMetric``: the labels of a matched pair's result."""
    matching = node.matching
    labels = many
    if node.op in _ARITHMETIC or node.bool_modifier:
        labels = _drop_name(labels)
    if matching.card is ast.Cardinality.ONE_TO_ONE:
        names = frozenset(matching.labels)
        if matching.on:
            labels = tuple(p for p in labels if p[0] in names)
        else:
            labels = tuple(p for p in labels if p[0] not in names)
    if matching.include:
        for name in matching.include:
            labels = model_labels.with_label(labels, name, model_labels.get(one, name))
    return labels


def vector_vector(node: ast.BinaryOp, lhs: StepVector, rhs: StepVector) -> StepVector:
    """Arithmetic or comparison between two vectors with one-to-one or group matching."""
    if node.op.is_set:
        return set_operation(node, lhs, rhs)
    matching = node.matching
    swapped = matching.card is ast.Cardinality.ONE_TO_MANY
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    signature = signature_function(matching)
    one_by_sig: dict[samples.Labels, tuple[samples.Labels, float]] = {}
    for labels, value in one.items():
        sig = signature(labels)
        if sig in one_by_sig:
            side = "left" if swapped else "right"
            group = _match_group(labels, matching)
            raise errors.EvaluationError(
                f"found duplicate series for the match group {group} on the {side} hand-side "
                f"of the operation: [{model_labels.canonical(labels)}, "
                f"{model_labels.canonical(one_by_sig[sig][0])}];many-to-many matching not "
                "allowed: matching labels must be unique on one side"
            )
        one_by_sig[sig] = (labels, value)
    one_to_one = matching.card is ast.Cardinality.ONE_TO_ONE
    matched: dict[samples.Labels, set[samples.Labels]] = {}
    out: StepVector = {}
    for labels, value in many.items():
        sig = signature(labels)
        partner = one_by_sig.get(sig)
        if partner is None:
            continue
        left, right = (partner[1], value) if swapped else (value, partner[1])
        result, keep = element(node.op, left, right)
        if node.bool_modifier:
            result, keep = (1.0 if keep else 0.0), True
        if not keep:
            continue
        metric = _result_labels(labels, partner[0], node)
        seen = matched.get(sig)
        if one_to_one:
            if seen is not None:
                raise errors.EvaluationError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched[sig] = set()
        else:
            if seen is None:
                seen = matched[sig] = set()
            elif metric in seen:
                raise errors.EvaluationError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                )
            seen.add(metric)
        out[metric] = result
    return out


def _match_group(labels: samples.Labels, matching: ast.VectorMatching) -> str:
    """The labels that define the match group, as Prometheus prints them in errors."""
    names = frozenset(matching.labels)
    if matching.on:
        kept = tuple(p for p in labels if p[0] in names)
    else:
        kept = tuple(p for p in labels if p[0] not in names)
    return model_labels.canonical(kept)

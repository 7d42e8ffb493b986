"""Errors of query evaluation, worded as Loki's so clients see the same texts.

All are ``ValueError``s the query API answers with 400 (Loki's ``ErrPipeline``, ``ErrLimit`` and
evaluation errors such as many-to-many matching); the subclasses let the API tell them apart.
"""

from __future__ import annotations

from lokistack.model import labels as model_labels

ERROR_LABEL = "__error__"
PRESERVE_ERROR_LABEL = "__preserve_error__"


class EvaluationError(ValueError):
    """A query that parses but cannot be evaluated (vector matching, bad arguments)."""


class PipelineError(EvaluationError):
    """A metric sample still carries ``__error__``: Loki fails the query (``ErrPipeline``)."""

    def __init__(self, labels: model_labels.Labels) -> None:
        error = model_labels.get(labels, ERROR_LABEL)
        super().__init__(
            f"pipeline error: '{error}' for series: '{model_labels.canonical(labels)}'.\n"
            "Use a label filter to intentionally skip this error. "
            f'(e.g | __error__!="{error}").\n'
            'To skip all potential errors you can match empty errors.(e.g __error__="")\n'
            "The label filter can also be specified after unwrap. "
            '(e.g | unwrap latency | __error__="" )\n'
        )
        self.labels = labels


class SeriesLimitError(EvaluationError):
    """More result series than ``max_query_series`` (Loki's ``ErrLimit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"maximum number of series ({limit}) reached for a single query; consider reducing "
            "query cardinality by adding more specific stream selectors, reducing the time "
            "range, or aggregating results with functions like sum(), count() or topk()"
        )
        self.limit = limit

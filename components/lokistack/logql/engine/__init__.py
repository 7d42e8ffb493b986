"""Evaluation of LogQL metric queries over samples produced by the log pipeline.

The querier knows where log lines live and how to run the per-line pipeline; this package knows
what the numbers mean. The boundary between them is :class:`.evaluator.SampleSource`: for each
range aggregation the evaluator asks the source for the samples of its inner log query (one per
line that survives the pipeline: the line's byte length, or the unwrapped value) and does
everything else itself: windows per step, range and vector aggregations, binary operators,
``label_replace``, ``vector()``, the series limit and the result shapes of
:mod:`.samples`.

Modules: :mod:`.samples` (result types), :mod:`.range_vector` (``*_over_time``, ``rate``, ...
over sliding windows), :mod:`.vector_agg` (``sum``, ``topk``, ...), :mod:`.binary` (operators and
vector matching), :mod:`.functions` (``label_replace``, ``vector()``, ``absent_over_time``
labels), :mod:`.evaluator` (the step evaluator and an in-memory source for tests).
"""

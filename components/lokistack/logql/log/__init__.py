"""The per-line log pipeline: what ``{…} | stage | stage …`` does to each log entry.

A LogQL pipeline runs its stages left to right over one entry at a time; a stage may drop the
entry (filters), rewrite the line (``line_format``, ``decolorize``, ``unpack``) or change the
entry's label set (parsers, ``label_format``, ``drop``, ``keep``). A failing stage never drops
the entry: it sets ``__error__`` (and ``__error_details__``), as Loki does, so that log queries
show the failure and metric queries can refuse it.

Modules, from the bottom up:

- :mod:`.labels`: the mutable label set of one entry (stream labels, structured metadata,
  parsed labels, the ``_extracted`` rule, errors);
- :mod:`.filters`: line filters, and the bulk pre-filter over a decoded chunk block;
- :mod:`.parsers`: ``json``, ``logfmt`` (reader in :mod:`.logfmt`), ``regexp``, ``pattern``,
  ``unpack``;
- :mod:`.label_filters`: string, number, duration, bytes and ``ip()`` predicates;
- :mod:`.template` (with :mod:`.template_funcs`, :mod:`.printf` and :mod:`.gotime`): the Go
  text/template subset of ``line_format`` and ``label_format``;
- :mod:`.formatters`: ``line_format``, ``label_format``, ``decolorize``, ``drop``, ``keep``;
- :mod:`.pipeline`: :class:`~.pipeline.Pipeline` built from the AST, per line and per block, and
  the ``unwrap`` sample extraction of metric queries.

The pipeline is built from :mod:`lokistack.logql.syntax` AST nodes, which have already checked
regexes, patterns, IP ranges and JSON paths; only templates are checked here, when the pipeline
is built (:class:`~.pipeline.PipelineError`).
"""

"""LogQL: the query language of Loki, from text to results.

``syntax`` turns query text into a typed AST (lexer, parser, printer). The per-line pipeline
(filters, parsers, formatters) and the evaluator of range and vector aggregations build on that
AST, so that every component agrees on what a query means by sharing one parser.
"""

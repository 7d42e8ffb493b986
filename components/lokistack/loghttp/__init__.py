"""Loki's HTTP query API as data: request parameters in, response bodies out.

Shared by the querier, which answers queries, and the query frontend, which splits, forwards and
merges them; like Loki's ``pkg/loghttp``, it knows nothing about how queries are executed.
"""

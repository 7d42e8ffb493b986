"""Iterators shared by the read path: merging entries and samples from many sources.

Submodules are imported by their users (``from lokistack.iter import entries``).
"""

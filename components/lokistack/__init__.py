"""Lokistack: Grafana Loki's architecture in Python.

The package holds the workload, one program (``lokistack --target=<component>``) whose
components are selected at start; docs/architecture.md maps the subpackages.
"""

__version__ = "0.1.0.dev0"

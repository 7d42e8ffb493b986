"""The ingester: receives replicated pushes over gRPC and keeps each tenant's streams.

Submodules are imported by their users (``from lokistack.ingester import ingester``).
"""

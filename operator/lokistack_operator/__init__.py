"""The LokiStack Kubernetes operator."""

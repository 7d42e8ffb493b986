"""The query frontend: splits queries by time, queues them per tenant, merges the answers."""

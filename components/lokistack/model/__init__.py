"""The data model every component shares: stream labels, their identity hashes, tenants.

Pure and synchronous, with no dependency on configuration or the wire protocol, so that the
distributor, the ingester, the querier and the compactor agree on a stream's identity by
importing the same few functions (docs/format/labels.md).
"""

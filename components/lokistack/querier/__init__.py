"""The querier: the HTTP query API, reading ingesters and the object store, merged."""

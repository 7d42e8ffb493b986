"""The distributor: push decoding, validation, rate limiting and fan-out to ingesters.

Submodules are imported by their users (``from lokistack.distributor import decode``); this
package imports nothing so that the pure libraries (decode, validation) load without the
server-side machinery.
"""

"""Chunks: how a stream's entries are held in memory, flushed, and read back.

A chunk is a header, compressed blocks and a block index (docs/format/chunk.md). The layout is
column-wise so that Python reads a block with a few bulk copies instead of a per-entry loop, and a
literal line filter can run ``bytes.find`` over a whole block:

- ``codec``: the compression codecs and their codec bytes;
- ``block``: one block's payload, encoding, lazy decoding and bulk search;
- ``head``: the appendable, unordered head block that is cut into blocks;
- ``chunk``: ``MemChunk``, head plus blocks, with encode/decode, time-ordered iteration and
  checkpoints for the WAL.
"""

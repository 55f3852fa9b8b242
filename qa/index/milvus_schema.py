"""The collections of an index in Milvus: their names, their schemas, and the generation committed in them.

Collections (prefix ``<c>`` from the location ``milvus:<uri>#<c>``), every row carrying its generation ``gen``
and keyed ``gen << 40 | n``:

    <c>_meta           key "current": the committed generation
    <c>_dense          a sentence per row: row, start, end, duplicate key, cache keys, and its vector
    <c>_dense_context  a sentence per row: row, and its context vector
    <c>_blobs          pieces of at most 65,535 bytes: the manifest, each document's record, text, pages, headings,
                       and the BM25 channels' term statistics
    <c>_bm25           a sentence per row: row, and its BM25 term weights as a sparse vector (Milvus >= 2.4, Lite)
    <c>_bm25_context   the same for its window (see qa/index/stores/milvus_lexical.py and the milvus_lexical setting)
"""

from __future__ import annotations

from typing import Any

from .location import MilvusLocation
from .milvus_client import _BOUNDED, _STRONG, READ_TIMEOUT, WRITE_TIMEOUT, client, last_write, reads_at
from .milvus_kinds import VectorIndex
from .stores.milvus_lexical import SPARSE_PARTS

__all__ = ["PARTS", "current_generation"]

#: The collections every index has besides ``<c>_meta`` (the sparse ones, :data:`SPARSE_PARTS`, only some).
PARTS = ("dense", "dense_context", "blobs")


def _names(loc: MilvusLocation) -> dict[str, str]:
    """Each collection's name at ``loc``, by its part.

    Example:
        >>> from qa.index.location import parse_location
        >>> _names(parse_location("milvus:/tmp/never-opened.db#articles"))["dense"]
        'articles_dense'
    """
    return {part: f"{loc.collection}_{part}" for part in ("meta", *PARTS, *SPARSE_PARTS)}


def _create(c: Any, pymilvus: Any, name: str, part: str, dimension: int, vector: VectorIndex | None = None) -> None:
    """Create the collection ``name`` of ``part`` (``dimension``: its vectors'; ``vector``: a dense one's index)."""
    dt = pymilvus.DataType
    schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    params = c.prepare_index_params()
    if part == "meta":
        schema.add_field("key", dt.VARCHAR, max_length=64, is_primary=True)
    else:
        schema.add_field("id", dt.INT64, is_primary=True)
    schema.add_field("gen", dt.INT64)
    if part in ("dense", "dense_context"):
        schema.add_field("row", dt.INT64)
        if part == "dense":
            for field in ("start", "end", "dup", "key_text", "key_window"):
                schema.add_field(field, dt.INT64)
        schema.add_field("vec", dt.FLOAT_VECTOR, dim=dimension)
        vector = vector or VectorIndex()
        params.add_index(field_name="vec", index_type=vector.kind, metric_type="IP", params=vector.build_params())
    elif part in SPARSE_PARTS:
        schema.add_field("row", dt.INT64)
        schema.add_field("sp", dt.SPARSE_FLOAT_VECTOR)
        params.add_index(field_name="sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    else:
        if part == "blobs":
            schema.add_field("kind", dt.VARCHAR, max_length=16)
            schema.add_field("owner", dt.INT64)
            schema.add_field("part", dt.INT64)
            schema.add_field("data", dt.VARCHAR, max_length=65_535)
        schema.add_field("v", dt.FLOAT_VECTOR, dim=2)  # every collection needs a vector field
        params.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=params, consistency_level="Strong", timeout=WRITE_TIMEOUT)


def _vector_dimension(c: Any, name: str) -> int | None:
    """The dimension of the vectors of the collection ``name`` (``None``: it has no ``vec`` field)."""
    for field in c.describe_collection(name, timeout=READ_TIMEOUT).get("fields", []):
        if field.get("name") == "vec":
            return int(field.get("params", {}).get("dim", 0))
    return None


def current_generation(loc: MilvusLocation, *, bounded: bool = False) -> int:
    """The committed generation at ``loc`` (0: nothing committed yet).

    ``bounded``: read at bounded staleness: a generation committed by another process in the last few seconds
    (the server's ``common.gracefulTime``, 5 s by default) may not be seen yet, but the read waits for no time tick
    (a Strong one waits ~0.4 s on a server's defaults). This process's own commits are always seen.
    """
    c = client(loc)
    meta = _names(loc)["meta"]
    if not c.has_collection(meta, timeout=READ_TIMEOUT):
        return 0
    reads = _STRONG
    if bounded:  # after this process published there, at least that publication
        own = last_write([meta], 0.0)
        reads = reads_at(own) if own else _BOUNDED
    found = c.get(meta, ids=["current"], output_fields=["gen"], timeout=READ_TIMEOUT, **reads)
    return int(found[0]["gen"]) if found else 0

"""Re-run the checks behind docs/notes/milvus-ray.md (Milvus Lite, a Milvus server, Ray Data).

Not product code and not a test: it prints what it sees, one line per fact, so the note can be re-checked
after a version bump. Needs its own venv (never the project's):

    python3 -m venv .venv-milvus
    .venv-milvus/bin/pip install pymilvus==2.5.18 milvus-lite==2.5.1 'setuptools<81'
    .venv-milvus/bin/python docs/notes/milvus_probe.py lite                 # ~30 s
    .venv-milvus/bin/python docs/notes/milvus_probe.py server http://127.0.0.1:19530
    # Ray: a venv with 'ray[data]==2.60.0' plus the two pins above
    RAY_AUTH_MODE=disabled RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 .venv-ray/bin/python docs/notes/milvus_probe.py ray

Everything runs under a fresh temporary folder, on 127.0.0.1 only, with at most 6,000 vectors.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def check(label, fn):
    """Print 'label: OK result' or 'label: ERR Type message'; return the result or None."""
    t = time.time()
    try:
        r = fn()
        print(f"{label}: OK {str(r)[:160]} ({time.time() - t:.2f}s)", flush=True)
        return r
    except Exception as e:  # noqa: BLE001 - the point is to show which error each call gives
        msg = " ".join(str(e).split())[:220]
        print(f"{label}: ERR {type(e).__name__} {msg} ({time.time() - t:.2f}s)", flush=True)
        return None


def unit_vectors(n, dim=384, seed=0):
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sentence_schema(client_cls, data_type, *, sparse):
    s = client_cls.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", data_type.INT64, is_primary=True)
    s.add_field("vec", data_type.FLOAT_VECTOR, dim=384)
    if sparse:
        s.add_field("sp", data_type.SPARSE_FLOAT_VECTOR)
    s.add_field("doc", data_type.VARCHAR, max_length=512)
    s.add_field("pos", data_type.INT64)
    s.add_field("gen", data_type.INT64)
    s.add_field("meta", data_type.JSON)
    return s


def common_checks(c, *, sparse, strong):
    """Schema, batched insert, exact FLAT scores, filters, vectors by id, delete, count."""
    from pymilvus import AnnSearchRequest, DataType, MilvusClient, RRFRanker, WeightedRanker

    cl = {"consistency_level": "Strong"} if strong else {}
    for name in ("s",):
        if c.has_collection(name):
            c.drop_collection(name)
    ip = c.prepare_index_params()
    ip.add_index(field_name="vec", index_type="FLAT", metric_type="IP")
    if sparse:
        ip.add_index(field_name="sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    c.create_collection("s", schema=sentence_schema(MilvusClient, DataType, sparse=sparse), index_params=ip, **cl)
    n = 6000
    v = unit_vectors(n)
    t = time.time()
    for b in range(0, n, 2000):  # 2,000 x 384 floats ~ 3 MiB a call; see the note for the ~7 MiB cliff in Lite
        rows = []
        for i in range(b, b + 2000):
            r = {"id": i, "vec": v[i], "doc": f"d{i % 10}.txt", "pos": i, "gen": 1, "meta": {"page": i % 3}}
            if sparse:
                r["sp"] = {i % 1000: 1.0, 5000 + i % 7: 0.5}
            rows.append(r)
        c.insert("s", rows)
    print(f"insert {n} rows in 2000-row batches: {time.time() - t:.2f}s")
    check("count(*) right after insert, default consistency",
          lambda: c.query("s", filter="", output_fields=["count(*)"])[0]["count(*)"])
    q = v[:3]
    res = c.search("s", data=q, anns_field="vec", limit=5, output_fields=["doc"], **cl)
    exact = q @ v.T
    err = max(abs(h["distance"] - exact[k][h["id"]]) for k in range(3) for h in res[k])
    same = all([h["id"] for h in res[k]] == list(np.argsort(-exact[k])[:5]) for k in range(3))
    print(f"FLAT/IP search: same top-5 as numpy {same}, max |score - numpy dot| {err:.1e}")
    check("filter doc in [..] and pos >= 100",
          lambda: [h["entity"]["doc"] for h in c.search("s", data=[v[0]], anns_field="vec", limit=3,
                                                         filter='doc in ["d3.txt","d4.txt"] and pos >= 100',
                                                         output_fields=["doc"])[0]])
    check("JSON filter meta['page'] == 2",
          lambda: len(c.search("s", data=[v[0]], anns_field="vec", limit=3, filter='meta["page"] == 2')[0]))
    check("filter_params template (retry_times=0 so a failure is quick)",
          lambda: len(c.search("s", data=[v[0]], anns_field="vec", limit=3, filter="doc in {d}",
                               filter_params={"d": ["d1.txt"]}, retry_times=0)[0]))
    check("get(ids=[7, 3]) returns ids", lambda: [g["id"] for g in c.get("s", ids=[7, 3], output_fields=["doc"])])
    got = c.get("s", ids=[11, 12, 13], output_fields=["vec"])
    print("vectors by id are bit-exact:",
          all(np.array_equal(np.asarray(g["vec"], dtype=np.float32), v[g["id"]]) for g in got))
    if sparse:
        check("sparse search with a dict", lambda: [h["id"] for h in c.search(
            "s", data=[{3: 1.0, 5003: 2.0}], anns_field="sp", limit=3, search_params={"metric_type": "IP"})[0]])
        check("sparse vector back from query", lambda: c.get("s", ids=[11], output_fields=["sp"])[0]["sp"])
        r1 = AnnSearchRequest(data=[v[0]], anns_field="vec", param={"metric_type": "IP"}, limit=10)
        r2 = AnnSearchRequest(data=[{0: 1.0}], anns_field="sp", param={"metric_type": "IP"}, limit=10)
        for rk in (WeightedRanker(0.7, 0.3), RRFRanker(60)):
            check(f"hybrid_search {type(rk).__name__}",
                  lambda rk=rk: [h["id"] for h in c.hybrid_search("s", [r1, r2], ranker=rk, limit=3)[0]])
    else:
        r1 = AnnSearchRequest(data=[v[0]], anns_field="vec", param={"metric_type": "IP"}, limit=10)
        check("hybrid_search", lambda: c.hybrid_search("s", [r1, r1], ranker=RRFRanker(60), limit=3))
    check("delete(filter='doc == \"d9.txt\"') returns", lambda: type(c.delete("s", filter='doc == "d9.txt"')).__name__)
    check("count(*) after delete, Strong",
          lambda: c.query("s", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])
    check("query(filter) with no limit on 5,400 rows",
          lambda: len(c.query("s", filter="pos >= 0", output_fields=["id"])))
    check("query limit=16385", lambda: c.query("s", filter="pos >= 0", output_fields=["id"], limit=16385))
    check("search limit=16385", lambda: c.search("s", data=[v[0]], anns_field="vec", limit=16385))
    check("upsert one row", lambda: c.upsert("s", [{"id": 5, "vec": v[5], "doc": "x", "pos": 5, "gen": 1, "meta": {},
                                                     **({"sp": {1: 1.0}} if sparse else {})}]))
    for it in ("IVF_FLAT", "IVF_SQ8", "HNSW"):
        def reindex(it=it):
            c.release_collection("s")
            for ix in c.list_indexes("s", field_name="vec"):
                c.drop_index("s", ix)
            p = c.prepare_index_params()
            p.add_index(field_name="vec", index_type=it, metric_type="IP",
                        params={"M": 16, "efConstruction": 64} if it == "HNSW" else {"nlist": 64})
            c.create_index("s", p)
            c.load_collection("s")
            return [c.describe_index("s", ix)["index_type"] for ix in c.list_indexes("s", field_name="vec")]
        check(f"index {it}", reindex)
    check("create_alias", lambda: c.create_alias("s", "live"))
    check("alter_alias", lambda: c.alter_alias("s", "live"))
    check("drop_alias", lambda: c.drop_alias("live"))
    check("create_partition", lambda: c.create_partition("s", "p1"))


def generation_swap(c):
    """Readers follow a 'current generation' row; a new build becomes visible in one upsert."""
    from pymilvus import DataType, MilvusClient

    for name in ("sent", "meta"):
        if c.has_collection(name):
            c.drop_collection(name)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("gen", DataType.INT64)
    s.add_field("t", DataType.VARCHAR, max_length=100)
    p = c.prepare_index_params()
    p.add_index(field_name="vec", index_type="FLAT", metric_type="IP")
    c.create_collection("sent", schema=s, index_params=p, consistency_level="Strong")
    m = MilvusClient.create_schema(auto_id=False)
    m.add_field("key", DataType.VARCHAR, max_length=64, is_primary=True)
    m.add_field("gen", DataType.INT64)
    m.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # every collection needs a vector field
    pm = c.prepare_index_params()
    pm.add_index(field_name="v", index_type="FLAT", metric_type="L2")
    c.create_collection("meta", schema=m, index_params=pm, consistency_level="Strong")

    def current():
        return c.get("meta", ids=["current"], output_fields=["gen"])[0]["gen"]

    def ask():
        g = current()
        hits = c.search("sent", data=[[1, 0, 0, 0]], anns_field="vec", limit=5, filter=f"gen == {g}",
                        output_fields=["t"])
        return g, sorted(h["entity"]["t"] for h in hits[0])

    c.insert("sent", [{"id": (1 << 40) | i, "vec": [1, 0, 0, 0], "gen": 1, "t": f"g1-{i}"} for i in range(3)])
    c.upsert("meta", [{"key": "current", "gen": 1, "v": [0.0, 0.0]}])
    print("generation: published 1 ->", ask())
    c.insert("sent", [{"id": (2 << 40) | i, "vec": [1, 0, 0, 0], "gen": 2, "t": f"g2-{i}"} for i in range(2)])
    print("generation: gen 2 written, not published ->", ask())
    c.upsert("meta", [{"key": "current", "gen": 2, "v": [0.0, 0.0]}])
    print("generation: published 2 ->", ask())
    c.delete("sent", filter="gen < 2")
    print("generation: old rows deleted, count", c.query("sent", filter="", output_fields=["count(*)"])[0]["count(*)"])


def lite(tmp):
    import importlib.metadata as md

    import pymilvus
    from pymilvus import MilvusClient

    print("pymilvus", pymilvus.__version__, "milvus-lite", md.version("milvus-lite"), "python", sys.version.split()[0])
    db = os.path.join(tmp, "probe.db")
    t = time.time()
    c = MilvusClient(db)
    print(f"open {os.path.basename(db)}: {time.time() - t:.2f}s (starts the bundled 'milvus' binary on a unix socket)")
    check("get_server_version", c.get_server_version)
    common_checks(c, sparse=True, strong=False)
    generation_swap(c)
    check("rename_collection", lambda: c.rename_collection("sent", "sent2"))
    code = ("import logging; logging.getLogger('pymilvus').setLevel(50)\n"
            "from pymilvus import MilvusClient\n"
            f"try: MilvusClient({db!r}); print('OK')\n"
            "except Exception as e: print(type(e).__name__, e)")
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=120)
    print("second process opens the same file:", r.stdout.strip(), "| stderr:", r.stderr.strip().splitlines()[:1])
    c.close()


def server(uri):
    import pymilvus
    from pymilvus import DataType, MilvusClient

    print("pymilvus", pymilvus.__version__)
    c = MilvusClient(uri)
    version = check("get_server_version", c.get_server_version)
    s = MilvusClient.create_schema(auto_id=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    if c.has_collection("probe_sp"):
        c.drop_collection("probe_sp")
    check("create a collection with SPARSE_FLOAT_VECTOR", lambda: c.create_collection("probe_sp", schema=s))
    check("insert a sparse row", lambda: c.insert("probe_sp", [{"id": 1, "sp": {1: 0.5}}]))
    c.drop_collection("probe_sp")
    sparse = bool(version) and tuple(int(x) for x in version.lstrip("v").split("-")[0].split(".")[:2]) >= (2, 4)
    common_checks(c, sparse=sparse, strong=True)
    generation_swap(c)
    check("rename_collection", lambda: c.rename_collection("sent", "sent2"))
    c.drop_collection("sent2")


def ray_checks(tmp):
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    t = time.time()
    ctx = ray.init(num_cpus=2, include_dashboard=False, _temp_dir=os.path.join(tmp, "ray"), log_to_driver=False,
                   logging_level=logging.WARNING)
    print(f"ray {ray.__version__}: init {time.time() - t:.2f}s, node ip {ctx.address_info['node_ip_address']}")
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    ray_pids = set(subprocess.run(["pgrep", "-f", tmp], capture_output=True, text=True).stdout.split())
    ray_pids.add(str(os.getpid()))
    print("listening:", sorted(ln.split()[3] for ln in out.splitlines() if any(f"pid={p}," in ln for p in ray_pids)))
    dc = DataContext.get_current()
    dc.enable_progress_bars = False

    class Embed:
        """Stands in for the model: a fixed random projection of byte counts (deterministic, cheap)."""

        def __init__(self, dim):
            self.w = np.random.default_rng(0).standard_normal((256, dim)).astype(np.float32)
            self.pid = os.getpid()

        def __call__(self, batch):
            counts = np.stack([np.bincount(np.frombuffer(str(t).encode(), np.uint8), minlength=256)
                               for t in batch["text"]])
            # row by row: a matrix product's rounding depends on the batch shape, a row's product does not
            batch["vec"] = np.stack([row.astype(np.float32) @ self.w for row in counts])
            batch["pid"] = np.full(len(counts), self.pid)
            return batch

    n = 5000
    texts = [f"sentence {i} about topic {i % 97}" for i in range(n)]
    direct = Embed(384)({"text": np.array(texts, dtype=object)})["vec"]
    for preserve in (False, True):
        dc.execution_options.preserve_order = preserve  # read when the Dataset is made, so set it first
        ds = ray.data.from_items([{"id": i, "text": s} for i, s in enumerate(texts)])  # many small blocks
        t = time.time()
        mapped = ds.map_batches(Embed, fn_constructor_args=(384,), batch_size=500, num_cpus=1, batch_format="numpy",
                                compute=ActorPoolStrategy(size=2))
        ids, vecs, pids = [], [], set()
        for b in mapped.iter_batches(batch_size=None, batch_format="numpy"):
            ids.extend(b["id"].tolist())
            vecs.append(b["vec"])
            pids.update(b["pid"].tolist())
        order = np.argsort(ids)
        print(f"preserve_order={preserve}: map_batches(ActorPoolStrategy(size=2)) {time.time() - t:.2f}s, "
              f"actors that got work {len(pids)}, iter_batches order kept {ids == list(range(n))}, "
              f"vectors bit-identical to one-process run {np.array_equal(np.vstack(vecs)[order], direct)}")
    t = time.time()
    ray.shutdown()
    print(f"ray.shutdown {time.time() - t:.2f}s")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "lite"
    if what != "ray":
        import pymilvus  # noqa: F401 - its import configures the "pymilvus" logger, so quiet it afterwards

        for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)  # it logs every failed RPC at ERROR
    with tempfile.TemporaryDirectory(prefix="milvus-probe-") as tmp:
        if what == "lite":
            lite(tmp)
        elif what == "server":
            server(sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:19530")
        elif what == "ray":
            ray_checks(tmp)
        else:
            sys.exit("usage: milvus_probe.py lite | server [URI] | ray")


if __name__ == "__main__":
    main()

"""`xcult count`'s engine: building infini-gram byte datastores (Rust writes the bytes,
infini-gram's indexer the suffix array) and querying them, on the embedded experiment's
corpora and on a generated 100 MB English corpus (Zipf vocabulary, as bench_prep's).
Queries: exact counts of words drawn from the corpus, and answer-near-entity counts
(a word with the rarest word around it as its entity, as probes have); the reference
is a scan of the same bytes per query (`bytes.count`, non-overlapping, what a script
without an index does).

    python benchmarks/bench_count.py [--mb 100] [--queries 300] [--demo runs/demo]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.corpora import generate
from xcult import _core
from xcult.density.count import Datastore, suffix_array

OUT = Path("bench_out")


def chunk_file(jsonl: list[Path], out: Path, max_chars: int = 5000) -> Path:
    """Each line a document, cut into chunks of at most `max_chars` characters."""
    rows = {"chunk_id": [], "document_id": [], "language": [], "text": []}
    doc = 0
    for p in jsonl:
        for line in p.read_text(encoding="utf-8").splitlines():
            text = json.loads(line)["text"]
            for i in range(0, len(text), max_chars):
                rows["chunk_id"].append(len(rows["chunk_id"]))
                rows["document_id"].append(doc)
                rows["language"].append("en")
                rows["text"].append(text[i : i + max_chars])
            doc += 1
    pl.DataFrame(rows, schema={"chunk_id": pl.UInt64, "document_id": pl.UInt64, "language": pl.Utf8, "text": pl.Utf8}).write_parquet(out)
    return out


def build(chunks: list[Path], keep: list[str], d: Path) -> dict:
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    t = time.perf_counter()
    stats = json.loads(_core.write_datastore(json.dumps({"chunks": [str(c) for c in chunks], "keep_languages": keep, "out_dir": str(d)})))
    write_s = time.perf_counter() - t
    sa = suffix_array(d, stats["bytes"], 0, 8)
    size = sum(f.stat().st_size for f in d.iterdir() if f.is_file())
    return {"documents": stats["documents"], "mb": stats["bytes"] / 1e6, "write_s": write_s, "sa_s": sa["suffix_array_seconds"], "disk_mb": size / 1e6}


def queries(ds: Datastore, d: Path, n: int, seed: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Words drawn from the datastore's own text (so most occur), and probe-like pairs:
    a word with the rarest word of the 400 bytes around it as its entity (as `xcult
    count` picks a question's entity)."""
    data = (d / "tokenized.0").read_bytes()
    rng = random.Random(seed)
    words, pairs = [], []
    while len(words) < n:
        at = rng.randrange(len(data) - 400)
        window = data[at : at + 400].decode("utf-8", errors="ignore").split()[1:-1]
        ws = [w.strip(".,;!?") for w in window if len(w.strip(".,;!?")) >= 3]
        if len(ws) >= 2:
            words.append(ws[0])
            pairs.append((ws[0], min(ws[1:], key=lambda w: ds.count(w)[0])))
    return words, pairs


def measure(d: Path, n: int, seed: int, scan: int) -> dict:
    ds = Datastore(d)
    words, pairs = queries(ds, d, n, seed)
    t = time.perf_counter()
    counts = [ds.count(w)[0] for w in words]
    count_s = time.perf_counter() - t
    t = time.perf_counter()
    for a, b in pairs:
        ds.count_near(a, b, 500)
    near_s = time.perf_counter() - t
    data = (d / "tokenized.0").read_bytes()
    t = time.perf_counter()
    scanned = [data.count(w.encode()) for w in words[:scan]]
    scan_s = (time.perf_counter() - t) / scan * n
    # the scan is non-overlapping; for words of 3+ letters it agrees with the index almost always
    agree = float(np.mean([a == b for a, b in zip(counts[:scan], scanned)]))
    return {
        "count_qps": n / count_s, "near_qps": n / near_s, "scan_qps": n / scan_s,
        "speedup_vs_scan": scan_s / count_s, "scan_agreement": agree, "median_count": float(np.median(counts)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--scan", type=int, default=30, help="queries timed with the per-query scan")
    ap.add_argument("--demo", type=Path, default=Path("runs/demo"), help="a run directory with prep outputs (skipped if absent)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    cases = []
    for corpus, chunks, keep in (("en", "prep/en/en.chunks.parquet", []), ("bo", "prep/bo/without/bo_without.chunks.parquet", ["bo"])):
        if (a.demo / chunks).is_file():
            cases.append((f"demo {corpus}", [a.demo / chunks], keep))
    jsonl = generate(OUT / f"zipf-en-{int(a.mb)}", a.mb, "en", a.seed)
    big = OUT / f"count-en-{int(a.mb)}.chunks.parquet"
    if not big.is_file():
        chunk_file(jsonl, big)
    cases.append((f"generated en {a.mb:.0f} MB", [big], []))
    rows = []
    for name, chunks, keep in cases:
        d = OUT / "count" / name.replace(" ", "-")
        b = build(chunks, keep, d)
        q = measure(d, a.queries, a.seed, min(a.scan, a.queries))
        rows.append({"corpus": name, **b, **q})
        print(f"{name}: {b['documents']:,} docs, {b['mb']:.1f} MB; write {b['write_s']:.2f} s, suffix array {b['sa_s']:.1f} s, "
              f"{b['disk_mb']:.0f} MB on disk; count {q['count_qps']:,.0f} q/s, near {q['near_qps']:,.0f} q/s, "
              f"scan {q['scan_qps']:,.1f} q/s ({q['speedup_vs_scan']:,.0f}x; agree {q['scan_agreement']:.2f})", flush=True)
    print()
    print(f"{'corpus':<22}{'MB':>7}{'build s':>9}{'count q/s':>11}{'near q/s':>10}{'vs scan':>9}")
    for r in rows:
        print(f"{r['corpus']:<22}{r['mb']:>7.1f}{r['write_s'] + r['sa_s']:>9.1f}{r['count_qps']:>11,.0f}{r['near_qps']:>10,.0f}{r['speedup_vs_scan']:>8,.0f}x")
    (OUT / "bench_count.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

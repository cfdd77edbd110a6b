"""BM25 indexing and query speed, xcult (tantivy + per-language analyzers) vs bm25s,
same chunks and queries, one run; plus distinct terms on Chinese and Tibetan chunks.

English: >= 40k generated chunks of up to 5,000 characters (Zipf-distributed
vocabulary), 1,000 queries of 6-15 words, top 50: one query per call (one thread), and
all of them in one call (both cores).

    python benchmarks/bench_bm25.py [--chunks 50000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import bm25s
import numpy as np
import polars as pl

from xcult import _core
from xcult.corpus.sample import BO_SYLLABLES, ZH_CHARS

K = 50


def vocabulary(n: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 11))))
    return sorted(words)


def english_chunks(n: int, rng: random.Random) -> list[str]:
    vocab = vocabulary(50_000, rng)
    weights = 1 / np.arange(1, len(vocab) + 1) ** 1.05  # Zipf, like real text
    nprng = np.random.default_rng(rng.randint(0, 2**31))
    out = []
    for _ in range(n):
        length = int(nprng.integers(100, 900))
        words = nprng.choice(len(vocab), size=length, p=weights / weights.sum())
        sentence, text = [], []
        for w in words:
            sentence.append(vocab[w])
            if len(sentence) > nprng.integers(8, 20):
                text.append(" ".join(sentence).capitalize() + ".")
                sentence = []
        out.append(" ".join(text)[:5000])
    return out


def write_chunks(path: Path, texts: list[str], lang: str) -> None:
    pl.DataFrame(
        {"chunk_id": np.arange(len(texts), dtype=np.uint64), "document_id": np.arange(len(texts), dtype=np.uint64), "language": [lang] * len(texts), "text": texts}
    ).write_parquet(path)


def bench_xcult(path: Path, lang: str, index_dir: Path, queries: list[str]) -> tuple[float, float, float, list]:
    """Index time, one-query-per-call time (one thread), one-call batch time (every
    core), the hits. The batch must return the same hits as the single calls."""
    shutil.rmtree(index_dir, ignore_errors=True)
    t = time.perf_counter()
    _core.build_index(json.dumps({"chunks": [str(path)], "language": lang, "index_dir": str(index_dir), "threads": 2, "heap_mb": 512}))
    t_index = time.perf_counter() - t
    index = _core.Bm25Index(str(index_dir), lang)
    t = time.perf_counter()
    hits = [index.search([q], K)[0] for q in queries]  # one query per call: one thread
    t_single = time.perf_counter() - t
    t = time.perf_counter()
    batch = index.search(queries, K)
    t_batch = time.perf_counter() - t
    assert batch == hits, "the batched search differs from one query per call"
    return t_index, t_single, t_batch, hits


def size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 1e6


def bench_bm25s(texts: list[str], queries: list[str]) -> tuple[float, float, list]:
    t = time.perf_counter()
    retriever = bm25s.BM25()  # defaults: k1 = 1.5, b = 0.75, "lucene" variant
    retriever.index(bm25s.tokenize(texts, stopwords=None, show_progress=False), show_progress=False)
    t_index = time.perf_counter() - t
    t = time.perf_counter()
    q = bm25s.tokenize(queries, stopwords=None, show_progress=False)
    docs, scores = retriever.retrieve(q, k=K, n_threads=1, show_progress=False)
    return t_index, time.perf_counter() - t, docs


def distinct_terms(texts: list[str], lang: str) -> dict[str, float]:
    ours = {t for ts in _core.analyze(lang, texts) for t in ts}
    tok = bm25s.tokenize(texts, stopwords=None, show_progress=False)
    theirs = list(tok.vocab)
    return {
        "xcult_terms": len(ours),
        "xcult_mean_chars": float(np.mean([len(t) for t in ours])),
        "bm25s_terms": len(theirs),
        "bm25s_mean_chars": float(np.mean([len(t) for t in theirs])) if theirs else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--work", default="bench_out/bm25")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    texts = english_chunks(args.chunks, rng)
    path = work / "en.chunks.parquet"
    write_chunks(path, texts, "en")
    queries = []
    for _ in range(args.queries):
        words = rng.choice(texts).split()
        start = rng.randrange(max(1, len(words) - 15))
        queries.append(" ".join(words[start : start + rng.randint(6, 15)]))
    mb = sum(map(len, texts)) / 1e6
    print(f"{len(texts):,} English chunks ({mb:.0f} MB), {len(queries)} queries, top {K}")

    index_dir = work / "index-en"
    xi, xq, xb, xhits = bench_xcult(path, "en", index_dir, queries)
    bi, bq, bdocs = bench_bm25s(texts, queries)
    overlap = np.mean([len({h[0] for h in xh} & set(map(int, bd))) / K for xh, bd in zip(xhits, bdocs)])
    files = list(index_dir.iterdir())
    impacts = index_dir / "impacts.bin"
    print(f"{'':8} {'index chunks/s':>15} {'queries/s (1 thread)':>22} {'batch queries/s (2 threads)':>28}")
    print(f"{'xcult':8} {len(texts) / xi:15,.0f} {len(queries) / xq:22,.0f} {len(queries) / xb:28,.0f}")
    print(f"{'bm25s':8} {len(texts) / bi:15,.0f} {len(queries) / bq:22,.0f}")
    print(f"ratio    {bi / xi:14.1f}x {bq / xq:21.1f}x {bq / xb:27.1f}x   (top-50 overlap with bm25s: {overlap:.0%}; k1 differs: 1.2 vs 1.5)")
    print(f"xcult index on disk: tantivy {size_mb([f for f in files if f != impacts]):.0f} MB + impacts.bin {size_mb([impacts]):.0f} MB")

    zh = ["".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(20, 120))) + "。" for _ in range(5000)]
    bo = ["་".join(rng.choice(BO_SYLLABLES) for _ in range(rng.randint(10, 60))) + "།" for _ in range(5000)]
    for lang, sample in (("zh", zh), ("bo", bo)):
        d = distinct_terms(sample, lang)
        print(
            f"{lang}: xcult {d['xcult_terms']:,} distinct terms (mean {d['xcult_mean_chars']:.1f} chars); "
            f"bm25s {d['bm25s_terms']:,} (mean {d['bm25s_mean_chars']:.1f} chars)"
        )


if __name__ == "__main__":
    main()

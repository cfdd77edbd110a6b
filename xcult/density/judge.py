"""`xcult judge`: does a retrieved chunk entail the probe's fact?

Every (statement, chunk) pair of `index/retrieval.parquet` goes to one judge backend
(`xcult/density/judges.py`): vLLM, a transformers model, or an exact-match rule. Answers are
cached by a hash of the judge's identity and the pair's text, in Parquet parts written
atomically, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import time
from collections import Counter

import polars as pl

from xcult import layout
from xcult.config import RunConfig
from xcult.density.cache import Cache
from xcult.density.index import index_job
from xcult.density.judges import Judge, make_judge
from xcult.errors import ConfigError, MissingPathError
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.stage import StageReport


def judge_pairs(judge: Judge, cache: Cache, statements: list[str], chunks: list[str], batch_size: int, progress=None) -> tuple[list[float], int]:
    """P(yes) for every pair; returns the values and how many came from the cache."""
    identity = judge.identity()
    keys = [Cache.key(identity, s, c) for s, c in zip(statements, chunks)]
    hits = sum(1 for k in keys if k in cache.values)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in cache.values:
            first.setdefault(k, i)
    # Pairs of one chunk side by side: a batch then holds whole groups, whose shared
    # prompt prefix the transformers judge runs once and vLLM's prefix cache reuses.
    todo = sorted(first.values(), key=lambda i: (chunks[i], i))
    per_key = Counter(keys)
    if progress is not None and hits:
        progress(hits)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        values = judge.p_yes([statements[i] for i in batch], [chunks[i] for i in batch])
        cache.add([keys[i] for i in batch], values)
        if progress is not None:
            progress(sum(per_key[keys[i]] for i in batch))
    return [cache.values[k] for k in keys], hits


def _texts(cfg: RunConfig, retrieval: pl.DataFrame) -> pl.DataFrame:
    """The retrieval rows with their statement and chunk text."""
    from xcult.probes import load_culture

    e = cfg.eval
    rows = []
    for name in retrieval["culture"].unique(maintain_order=True):
        culture = load_culture(e.probes, name, e.lang(name), e.on_invalid)
        for lang in ("en", culture.lang):
            for item, it in zip(culture.index, culture.items(lang)):
                rows.append((name, lang, item, it.statement()))
    statements = pl.DataFrame(rows, schema={"culture": pl.Utf8, "lang": pl.Utf8, "item": pl.Int64, "statement": pl.Utf8}, orient="row")
    texts = []
    for corpus in retrieval["corpus"].unique(maintain_order=True):
        ids = retrieval.filter(pl.col("corpus") == corpus)["chunk_id"].unique()
        files = index_job(layout.of(cfg).index_dir(corpus))["chunks"]
        t = pl.scan_parquet(files).filter(pl.col("chunk_id").is_in(ids.implode())).select("chunk_id", "text").collect()
        texts.append(t.with_columns(corpus=pl.lit(corpus)))
    out = retrieval.join(statements, on=["culture", "lang", "item"], how="left").join(pl.concat(texts), on=["corpus", "chunk_id"], how="left")
    missing = out.filter(pl.col("statement").is_null() | pl.col("text").is_null())
    if not missing.is_empty():
        r = missing.row(0, named=True)
        raise MissingPathError(
            f"retrieval.parquet row (culture {r['culture']}, lang {r['lang']}, item {r['item']}, chunk {r['chunk_id']}) "
            "has no probe or chunk text: the probes or chunks changed since `xcult index`; rerun it with --force",
            str(layout.of(cfg).retrieval),
        )
    return out


def run_judge(cfg: RunConfig, progress: bool = True) -> dict:
    """Judges every retrieved (statement, chunk) pair → judge/judgments.parquet."""
    from rich.progress import Progress

    if cfg.eval is None or cfg.judge is None:
        missing = "eval" if cfg.eval is None else "judge"
        raise ConfigError(f"{cfg.path} has no [{missing}] section: the judge needs probes and a judge", missing)
    lay = layout.of(cfg)
    retrieval_path = lay.retrieval
    if not retrieval_path.is_file():
        raise MissingPathError(f"{retrieval_path} does not exist: run `xcult index {cfg.path}` first", str(retrieval_path))
    out_dir = lay.judge
    ensure_writable(out_dir)
    t0 = time.perf_counter()
    pairs = _texts(cfg, pl.read_parquet(retrieval_path))
    statements, chunks = pairs["statement"].to_list(), pairs["text"].to_list()
    translated = 0
    if cfg.judge.translate is not None:
        from xcult.density.translate import translate_pairs

        statements, chunks, translated = translate_pairs(cfg.judge.translate, pairs["lang"].to_list(), statements, chunks, out_dir / "translations")
    judge = make_judge(cfg.judge)
    cache = Cache(out_dir / "cache")
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("judging", total=len(statements))
        p, hits = judge_pairs(judge, cache, statements, chunks, cfg.judge.batch_size, lambda n: bar.advance(task, n))
    table = pairs.drop("statement", "text").with_columns(p_yes=pl.Series(p, dtype=pl.Float64)).with_columns(
        entailed=pl.col("p_yes") >= cfg.judge.threshold
    )
    write_parquet_atomic(lay.judgments, table)
    seconds = time.perf_counter() - t0
    stats = {
        "pairs": len(table),
        "cached": hits,
        "judged": len(table) - hits,
        "translated": translated,
        "entailed": int(table["entailed"].sum()),
        "seconds": round(seconds, 3),
        "pairs_per_second": round((len(table) - hits) / seconds, 2) if seconds > 0 else None,
        "identity": judge.identity(),
    }
    write_json_atomic(out_dir / "config.json", cfg.to_dict())
    write_json_atomic(out_dir / "stats.json", stats)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    """Judged pairs are cached by content, so the stage is current when nothing was
    left to judge."""
    s = run_judge(cfg, progress=progress)
    summary = f"{cfg.judge.backend} judge: {s['pairs']:,} pairs, {s['cached']:,} cached, {s['entailed']:,} entailed"
    return StageReport(summary, built=[f"{s['judged']:,} pairs"] if s["judged"] else [], current=[] if s["judged"] else ["judgments"])

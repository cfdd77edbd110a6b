"""`xcult index` and `xcult search`: tantivy BM25 indexes of the prep chunk files.

One index per corpus under `<out_dir>/index/<corpus>/`: `en` is the English pretraining
corpus; a language code is that language's own chunks (monolingual text and the
native halves of the pairs) from its without-bridges output. Each index is built by
one Rust call into a temporary directory (tantivy's files and `impacts.bin`, the
precomputed BM25 scores queries are answered from), gets its job.json and stats.json,
and is renamed into place, so an index directory that exists is complete.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl

from xcult import _core, completion, layout
from xcult.config import RunConfig
from xcult.errors import MissingPathError
from xcult.io import ensure_writable, replace_dir, write_json_atomic, write_parquet_atomic
from xcult.stage import StageReport, parts


# What an index directory holds; a change rebuilds older ones. 2: impacts.bin, BM25
# scores precomputed per (term, chunk) beside tantivy's files.
INDEX_FORMAT = 2


def corpora(cfg: RunConfig) -> list[str]:
    return cfg.index.corpora if cfg.index.corpora is not None else ["en", *cfg.prep.languages]


def corpus_job(cfg: RunConfig, corpus: str, index_dir: Path, check: bool = True) -> dict:
    """The Rust IndexJob of one corpus (`check`: its chunk file must exist)."""
    chunks, keep = [layout.of(cfg).chunks(corpus)], ([] if corpus == layout.ENGLISH else [corpus])
    for c in chunks if check else []:
        if not c.is_file():
            raise MissingPathError(f"chunk file {c} does not exist: run `xcult prep {cfg.path}` first", str(c))
    ix = cfg.index
    return {
        "chunks": [str(c) for c in chunks],
        "language": corpus,
        "keep_languages": keep,
        "index_dir": str(index_dir),
        "threads": ix.threads,
        "heap_mb": ix.heap_mb,
    }


def _fingerprint(cfg: RunConfig, corpus: str) -> tuple[dict, list[Path]]:
    """An index depends on its chunk files and the settings that change its contents."""
    job = corpus_job(cfg, corpus, layout.of(cfg).index_dir(corpus))
    dense = corpus in cfg.index.dense_corpora
    settings = {
        "language": job["language"],
        "keep_languages": job["keep_languages"],
        "dense_model": cfg.index.dense_model if dense else None,
        "format": INDEX_FORMAT,
    }
    return settings, [Path(c) for c in job["chunks"]]


def index_status(cfg: RunConfig, corpus: str) -> completion.Status:
    final = layout.of(cfg).index_dir(corpus)
    if not final.exists():
        return completion.Status("missing")
    settings, inputs = _fingerprint(cfg, corpus)
    st = completion.status(final, settings, inputs)
    return completion.Status("stale", "stats.json is missing") if st and not (final / "stats.json").is_file() else st


def build_indexes(cfg: RunConfig, force: bool = False) -> dict[str, dict]:
    """Builds every corpus index the config names; returns stats by corpus."""
    root = layout.of(cfg).index
    ensure_writable(root)
    out = {}
    for corpus in corpora(cfg):
        final = root / corpus
        st = index_status(cfg, corpus)
        if st and not force:
            out[corpus] = json.loads((final / "stats.json").read_text()) | {"skipped": True}
            continue
        if st.state == "stale":
            print(f"index {corpus}: {st.reason} — rebuilding", file=sys.stderr, flush=True)
        tmp = root / f".{corpus}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        job = corpus_job(cfg, corpus, tmp)
        settings, inputs = _fingerprint(cfg, corpus)
        rec = completion.record(settings, inputs)
        stats = json.loads(_core.build_index(json.dumps(job)))
        if corpus in cfg.index.dense_corpora:
            from xcult.density.dense import build_dense

            ix = cfg.index
            stats["dense"] = build_dense(job["chunks"], job["keep_languages"], tmp, ix.dense_model, ix.dense_batch_size, ix.dense_device)
        write_json_atomic(tmp / "job.json", job | {"index_dir": str(final)})
        write_json_atomic(tmp / "stats.json", stats)
        completion.write(tmp, rec)
        replace_dir(tmp, final)
        out[corpus] = stats
    return out


def index_job(index_dir: Path) -> dict:
    """An index's job record: its language and the chunk files it was built from."""
    path = index_dir / "job.json"
    if not path.is_file():
        raise MissingPathError(f"{index_dir} is not an xcult index (no job.json): run `xcult index`", str(index_dir))
    return json.loads(path.read_text())


def search(index_dir: Path, queries: list[str], k: int, dense_model: str | None = None) -> list[pl.DataFrame]:
    """Ranked chunks per query: rank, score, chunk_id, document_id, text. BM25, or with
    `dense_model` the index's dense embeddings (score = cosine)."""
    job = index_job(index_dir)
    if dense_model is not None:
        from xcult.density.dense import DenseIndex

        hits = DenseIndex(index_dir, dense_model).search(queries, k)
    else:
        hits = _core.Bm25Index(str(index_dir), job["language"]).search(queries, k)
    ids = sorted({h[0] for hs in hits for h in hs})
    texts = (
        pl.scan_parquet(job["chunks"]).filter(pl.col("chunk_id").is_in(ids)).select("chunk_id", "text").collect()
        if ids
        else pl.DataFrame(schema={"chunk_id": pl.UInt64, "text": pl.Utf8})
    )
    text_of = dict(zip(texts["chunk_id"], texts["text"]))
    return [
        pl.DataFrame(
            {
                "rank": list(range(1, len(hs) + 1)),
                "score": [h[2] for h in hs],
                "chunk_id": [h[0] for h in hs],
                "document_id": [h[1] for h in hs],
                "text": [text_of.get(h[0], "") for h in hs],
            },
            schema={"rank": pl.Int64, "score": pl.Float32, "chunk_id": pl.UInt64, "document_id": pl.UInt64, "text": pl.Utf8},
        )
        for hs in hits
    ]


def retrieve_probes(cfg: RunConfig) -> Path:
    """Top-k chunks for every probe statement (question with its answer filled in):
    English statements in the English corpus, native ones in their language's corpus;
    by BM25, or dense embeddings for `index.dense_corpora`."""
    from xcult.probes import load_culture

    e, k = cfg.eval, cfg.index.top_k
    frames = []
    for name in e.cultures:
        culture = load_culture(e.probes, name, e.lang(name), e.on_invalid)
        for lang in ("en", culture.lang):
            index_dir = layout.of(cfg).index_dir(lang)
            statements = [it.statement() for it in culture.items(lang)]
            dense = lang in cfg.index.dense_corpora
            found = search(index_dir, statements, k, cfg.index.dense_model if dense else None)
            for item, hits in zip(culture.index, found):
                frames.append(
                    hits.drop("text").with_columns(
                        culture=pl.lit(name),
                        lang=pl.lit(lang),
                        corpus=pl.lit(lang),
                        item=pl.lit(item, dtype=pl.Int64),
                        retriever=pl.lit("dense" if dense else "bm25"),
                    )
                )
    out = layout.of(cfg).retrieval
    cols = ["culture", "lang", "corpus", "item", "retriever", "rank", "score", "chunk_id", "document_id"]
    write_parquet_atomic(out, pl.concat(frames).select(cols))
    return out


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    before = {corpus: index_status(cfg, corpus) for corpus in corpora(cfg)}
    stats = build_indexes(cfg)
    retrieve_probes(cfg)
    report: dict[str, list[str]] = {"built": [], "rebuilt": [], "current": []}
    for corpus, st in before.items():
        for k, v in parts(corpus, st).items():
            report[k] += v
    return StageReport(", ".join(f"{c}: {s['chunks']:,} chunks" for c, s in stats.items()), **report)

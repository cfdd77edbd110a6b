"""`xcult density`: occurrences, cultural density and the instance-level comparison.

- occurrences.parquet: per probe (culture, question language) and corpus, the documents
  among its top-k chunks that the judge found to entail the statement, beside the
  judge-free count of chunks in the whole corpus where the answer co-occurs with the
  question's rarest terms (Rust, tantivy).
- density.parquet (the paper's Table 1 form): per culture and corpus, occurrences summed
  over the probes divided by the documents in the corpus (`density`), and the same per
  probe (`density_per_item` = mean occurrences / documents); with `xcult count`'s exact
  counts (a [count] section), their sums too (`exact_*`) and `density_exact` (answer AND
  entity occurrences / documents).
- instance_occurrences.parquet (appendix C.4): average occurrences, in the source
  language's corpus, of the items that transferred vs all candidates vs all items, per
  direction; needs `xcult eval`'s instances.parquet.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import polars as pl

from xcult import completion, layout
from xcult.config import RunConfig
from xcult.density.index import corpora as index_corpora
from xcult.density.index import index_job
from xcult.errors import ConfigError, MissingPathError
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.layout import probe_file
from xcult.probes import BLANK
from xcult.stage import StageReport, parts


# `xcult count`'s columns, joined in when its counts exist.
EXACT = ("exact_answer", "exact_statement", "exact_answer_entity")


def corpus_documents(chunk_files: list[str], keep_languages: list[str]) -> int:
    """Distinct documents among a corpus's indexed chunks."""
    scan = pl.scan_parquet(chunk_files)
    if keep_languages:
        scan = scan.filter(pl.col("language").is_in(keep_languages))
    return int(scan.select(pl.col("document_id").n_unique()).collect().item())


def occurrences(judgments: pl.DataFrame) -> pl.DataFrame:
    """Entailed documents per (culture, lang, corpus, item); items with no entailed chunk
    count 0."""
    keys = ["culture", "lang", "corpus", "item"]
    entailed = judgments.filter(pl.col("entailed")).group_by(keys).agg(occurrences=pl.col("document_id").n_unique().cast(pl.Int64))
    return (
        judgments.select(keys)
        .unique()
        .join(entailed, on=keys, how="left")
        .with_columns(pl.col("occurrences").fill_null(0))
        .sort(keys)
    )


def density_table(occ: pl.DataFrame, documents: dict[str, int]) -> pl.DataFrame:
    docs = pl.DataFrame({"corpus": list(documents), "documents": list(documents.values())}, schema={"corpus": pl.Utf8, "documents": pl.Int64})
    aggs = [
        pl.len().alias("items"),
        pl.col("occurrences").sum().alias("occurrences"),
        pl.col("occurrences").mean().alias("mean_occurrences"),
        (pl.col("occurrences") > 0).sum().alias("items_found"),
    ]
    if "cooccurrence" in occ.columns:
        aggs += [pl.col("cooccurrence").sum().alias("cooccurrence"), pl.col("cooccurrence").mean().alias("mean_cooccurrence")]
    exact = [c for c in EXACT if c in occ.columns]
    aggs += [pl.col(c).sum() for c in exact]
    table = (
        occ.group_by("culture", "corpus")
        .agg(aggs)
        .join(docs, on="corpus", how="left")
        .with_columns(
            density=pl.col("occurrences") / pl.col("documents"),
            density_per_item=pl.col("mean_occurrences") / pl.col("documents"),
        )
        .sort("culture", "corpus")
    )
    return table.with_columns(density_exact=pl.col("exact_answer_entity") / pl.col("documents")) if exact else table


def instance_occurrences(instances: pl.DataFrame, occ: pl.DataFrame) -> pl.DataFrame:
    """Mean occurrences, in the source language's corpus, of transferred items, of all
    candidates (wrong before, learned in the source) and of all items, per direction."""
    value_cols = ["occurrences"] + [c for c in ("cooccurrence", *EXACT) if c in occ.columns]
    src = instances.with_columns(corpus=pl.col("direction").str.split("->").list.first())
    t = src.join(occ.select("culture", "corpus", "item", *value_cols), on=["culture", "corpus", "item"], how="inner")
    groups = [("transferred", pl.col("transferred")), ("candidate", pl.col("candidate")), ("all", pl.lit(True))]
    frames = []
    for name, cond in groups:
        frames.append(
            t.filter(cond)
            .group_by("culture", "direction")
            .agg(pl.len().alias("items"), *[pl.col(c).mean().alias(f"mean_{c}") for c in value_cols])
            .with_columns(group=pl.lit(name))
        )
    return pl.concat(frames, how="diagonal").select("culture", "direction", "group", "items", *[f"mean_{c}" for c in value_cols]).sort("culture", "direction", "group")


def cooccurrence_counts(cfg: RunConfig, keys: pl.DataFrame) -> pl.DataFrame:
    """Judge-free counts for the (culture, lang, corpus, item) rows of `keys`."""
    from xcult import _core
    from xcult.probes import load_culture

    e = cfg.eval
    cultures = {name: load_culture(e.probes, name, e.lang(name), e.on_invalid) for name in keys["culture"].unique()}
    frames = []
    for (name, lang, corpus), g in keys.group_by("culture", "lang", "corpus", maintain_order=True):
        culture = cultures[name]
        by_item = dict(zip(culture.index, culture.items(lang)))
        rows = g["item"].to_list()
        pairs = [(by_item[i].answer, BLANK.sub(" ", by_item[i].question)) for i in rows]
        index_dir = layout.of(cfg).index_dir(corpus)
        counts = _core.Bm25Index(str(index_dir), index_job(index_dir)["language"]).cooccurrence(pairs, cfg.density.key_terms)
        frames.append(
            pl.DataFrame(
                {
                    "culture": name,
                    "lang": lang,
                    "corpus": corpus,
                    "item": rows,
                    "cooccurrence": [c[0] for c in counts],
                    "key_terms": [c[2] for c in counts],
                },
                schema={"culture": pl.Utf8, "lang": pl.Utf8, "corpus": pl.Utf8, "item": pl.Int64, "cooccurrence": pl.Int64, "key_terms": pl.List(pl.Utf8)},
            )
        )
    return pl.concat(frames)


def run_density(cfg: RunConfig) -> dict:
    if cfg.eval is None:
        raise ConfigError(f"{cfg.path} has no [eval] section: density needs its probes", "eval")
    lay = layout.of(cfg)
    path = lay.judgments
    if not path.is_file():
        raise MissingPathError(f"{path} does not exist: run `xcult judge {cfg.path}` first", str(path))
    t0 = time.perf_counter()
    out = lay.density
    ensure_writable(out)
    occ = occurrences(pl.read_parquet(path))
    occ = occ.join(cooccurrence_counts(cfg, occ), on=["culture", "lang", "corpus", "item"], how="left")
    if cfg.count is not None:
        if not lay.counts.is_file():
            raise MissingPathError(f"{lay.counts} does not exist: run `xcult count {cfg.path}` first (the config has a [count] section)", str(lay.counts))
        exact = pl.read_parquet(lay.counts).select("culture", "lang", "corpus", "item", *EXACT)
        occ = occ.join(exact, on=["culture", "lang", "corpus", "item"], how="left")
    documents = {}
    for corpus in occ["corpus"].unique(maintain_order=True):
        job = index_job(lay.index_dir(corpus))
        documents[corpus] = corpus_documents(job["chunks"], job["keep_languages"])
    dens = density_table(occ, documents)
    write_parquet_atomic(lay.density_table("occurrences"), occ)
    write_parquet_atomic(lay.density_table("density"), dens)
    stats = {"probes": len(occ), "documents": documents, "tables": ["occurrences.parquet", "density.parquet"]}
    instances_path = lay.eval_table("instances")
    if instances_path.is_file():
        inst = instance_occurrences(pl.read_parquet(instances_path), occ)
        write_parquet_atomic(lay.density_table("instance_occurrences"), inst)
        stats["tables"].append("instance_occurrences.parquet")
    else:
        stats["instance_occurrences"] = f"skipped: {instances_path} does not exist (run `xcult eval` for the instance comparison)"
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    write_json_atomic(out / "config.json", cfg.to_dict())
    write_json_atomic(out / "stats.json", stats)
    return stats


def _fingerprint(cfg: RunConfig) -> tuple[dict, list[Path]]:
    """Density depends on the judgments, each index (through its completion record),
    the probes it counts with and the eval instance table."""
    lay = layout.of(cfg)
    inputs = [lay.judgments, *(lay.index_dir(c) / completion.RECORD for c in index_corpora(cfg))]
    inputs += [p for p in (lay.eval_table("instances"),) if p.is_file()]
    inputs += [lay.counts] if cfg.count is not None else []
    e = cfg.eval
    probes = [probe_file(e.probes, c, lang) for c in e.cultures for lang in ("en", e.lang(c))]
    inputs += [Path(p) for p in probes if "://" not in p]
    return {"density": dataclasses.asdict(cfg.density), "remote_probes": [p for p in probes if "://" in p]}, inputs


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    lay = layout.of(cfg)
    if not lay.judgments.is_file():
        raise MissingPathError(f"{lay.judgments} does not exist: run `xcult judge {cfg.path}` first", str(lay.judgments))
    settings, inputs = _fingerprint(cfg)
    st = completion.status(lay.density, settings, inputs)
    if not st:
        rec = completion.record(settings, inputs)
        run_density(cfg)
        completion.write(lay.density, rec)
    s = json.loads((lay.density / "stats.json").read_text())
    return StageReport(f"{s['probes']} probe x corpus rows; documents {s['documents']}", **parts("tables", st))

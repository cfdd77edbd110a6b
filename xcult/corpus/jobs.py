"""Translates a run config into the jobs the Rust engine runs, one per output unit.

A unit is `en` (the English pretraining corpus) or a language code (its with- and
without-bridges corpora, which share one selection of pairs and monolingual text).
The job dictionaries mirror the serde structs in `rust_core/src/prep.rs` field for
field; `tests/test_config.py` round-trips every job of the shipped configs through Rust.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xcult.config import LANGUAGE_ID, RunConfig
from xcult.corpus.sources import TEXT, is_remote, local_files

ENGLISH = "en"


def units(cfg: RunConfig) -> list[str]:
    return ([ENGLISH] if cfg.prep.english is not None else []) + list(cfg.prep.languages)


def tasks(cfg: RunConfig, unit: str) -> int:
    """How many executor tasks build `unit` (then a merge, when more than one). Only the
    monolingual English unit is split: a language's selection of monolingual text
    depends on how many pairs survive, so its unit stays one task."""
    return cfg.prep.english.tasks if unit == ENGLISH else 1


def shard_job(job: dict[str, Any], index: int, count: int, out_dir: Path) -> dict[str, Any]:
    """One task's part of a monolingual unit's job: its share of the inputs into a pool."""
    return job | {"source": job["source"] | {"shard": {"index": index, "count": count}}, "out_dir": str(out_dir)}


def engine(cfg: RunConfig, tokenizer_path: Path, progress: bool) -> dict[str, Any]:
    p = cfg.prep
    return {
        "tokenizer": {"path": str(tokenizer_path), "eod": cfg.tokenizer.eod, "implementation": cfg.tokenizer.implementation},
        "seed": cfg.experiment.seed,
        "chunk_chars": p.chunk_chars,
        "on_error": p.on_error,
        "batch_bytes": p.batch_mb << 20,
        "pool_memory_bytes": p.pool_memory_mb << 20,
        "threads": p.threads,
        "progress": progress,
    }


def _doc_format(fmt: str, text_field: str) -> dict[str, Any]:
    return {"format": "text"} if fmt == "text" else {"format": fmt, "text_field": text_field}


def input_paths(cfg: RunConfig, unit: str) -> list[str]:
    """The local files a unit reads (fetched copies for remote inputs)."""
    if unit == ENGLISH:
        return local_files(cfg, cfg.prep.english.paths)
    lc = cfg.language(unit)
    lexicon = [lc.lexicon] if lc.switch_rate > 0 and lc.lexicon else []
    return [*local_files(cfg, lc.mono_paths), *lc.pair_paths, *lc.pair_xx_paths, *lexicon]


def _docs(cfg: RunConfig, paths: list[str], fmt: str, field: str) -> dict[str, Any]:
    """A DocSource; remote inputs are read from their fetched JSONL copies."""
    if paths and is_remote(paths[0]):
        return {"paths": local_files(cfg, paths), "format": _doc_format("jsonl", TEXT)}
    return {"paths": paths, "format": _doc_format(fmt, field)}


def _filter(keep_scripts: list[str], min_chars: int, lang: str, language_id: bool, dedup: str) -> dict[str, Any]:
    """A FilterSpec: scripts and length; language identification and deduplication only when on."""
    spec: dict[str, Any] = {"keep_scripts": keep_scripts, "min_chars": min_chars}
    if language_id:
        spec["language_id"] = LANGUAGE_ID[lang]
    if dedup != "off":
        spec["dedup"] = dedup
    return spec


def job(cfg: RunConfig, unit: str, tokenizer_path: Path, out_dir: Path, progress: bool) -> tuple[str, dict[str, Any]]:
    """("monolingual" | "bilingual", job dict) for one unit."""
    eng = engine(cfg, tokenizer_path, progress)
    if unit == ENGLISH:
        e = cfg.prep.english
        return "monolingual", {
            "name": ENGLISH,
            "language": ENGLISH,
            "source": _docs(cfg, e.paths, e.format, e.text_field),
            "filter": _filter(e.keep_scripts, e.min_chars, ENGLISH, e.language_id, e.dedup),
            "budget_tokens": e.budget_tokens,
            "engine": eng,
            "out_dir": str(out_dir),
        }
    lc = cfg.language(unit)
    if lc.pair_format == "tsv":
        pair_format: dict[str, Any] = {"format": "tsv", "en_first": lc.en_first}
    elif lc.pair_format == "jsonl":
        pair_format = {"format": "jsonl", "en_field": lc.en_field, "xx_field": lc.xx_field}
    else:
        pair_format = {"format": "aligned", "xx_paths": lc.pair_xx_paths}
    en_scripts = cfg.prep.english.keep_scripts if cfg.prep.english else ["Latin"]
    return "bilingual", {
        "language": unit,
        "mono": _docs(cfg, lc.mono_paths, lc.mono_format, lc.mono_text_field),
        "pairs": {"paths": lc.pair_paths, "format": pair_format},
        "en_filter": {"keep_scripts": en_scripts, "min_chars": lc.en_min_chars},
        "xx_filter": _filter(cfg.keep_scripts(unit), lc.min_chars, unit, lc.language_id, lc.dedup),
        "template": cfg.template(unit),
        **({"codeswitch": {"lexicon": lc.lexicon, "rate": lc.switch_rate}} if lc.switch_rate > 0 else {}),
        "mono_per_parallel": lc.mono_per_parallel,
        "budget_tokens": lc.budget_tokens,
        "shortage": lc.shortage,
        "engine": eng,
        "out_dir": str(out_dir),
    }

"""`xcult prep`: builds every output unit a config names, then the manifest.

Each unit is built by one Rust call into a temporary directory beside its final
place, which gets its resolved job, stats and completion record and is then renamed
into place. A unit is reused only when its record says it is current: the same job
(every setting that reaches the engine: seed, template, filters, tokenizer, ...) and
the same input and tokenizer files (`xcult/completion.py`); a stale unit is rebuilt,
with the reason. `force` rebuilds; a killed run leaves only a temporary directory,
cleared when the unit is rebuilt. A unit of several tasks (`prep.english.tasks`) is
built as one pool per task (`build_shard`, each with its own completion record, so a
killed task's siblings are kept) and then merged into the unit (`build_unit`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from xcult import __version__, _core, completion, layout
from xcult.config import RunConfig
from xcult.corpus import jobs
from xcult.errors import MissingPathError
from xcult.io import ensure_writable, replace_dir, write_json_atomic
from xcult.tokenizer import tokenizer_for

STATS = "stats.json"
JOB = "job.json"


# Engine settings that change how a unit is built, not its bytes (the Rust test
# `resource_settings_change_nothing_in_the_output`): changing them keeps it current.
_RESOURCES = frozenset({"progress", "threads", "batch_bytes", "pool_memory_bytes"})


def _settings(job: dict[str, Any]) -> dict[str, Any]:
    """What a unit's bytes depend on: the job without its output path and resource settings."""
    engine = {k: v for k, v in job["engine"].items() if k not in _RESOURCES}
    return {k: v for k, v in job.items() if k != "out_dir"} | {"engine": engine}


def _fingerprint(cfg: RunConfig, unit: str) -> tuple[dict[str, Any], list[Path]]:
    """A unit's settings and input files (its inputs and the tokenizer)."""
    tok = tokenizer_for(cfg)
    _, job = jobs.job(cfg, unit, tok, layout.of(cfg).unit(unit), False)
    return _settings(job), [*map(Path, jobs.input_paths(cfg, unit)), tok]


def unit_status(cfg: RunConfig, unit: str) -> completion.Status:
    """current / stale (why) / missing for one unit's outputs."""
    final = layout.of(cfg).unit(unit)
    if not final.exists():
        return completion.Status("missing")
    st = completion.status(final, *_fingerprint(cfg, unit))
    if st and not (final / STATS).is_file():
        return completion.Status("stale", "stats.json is missing")
    return st


def shard_statuses(cfg: RunConfig, unit: str, count: int, indices: range | list[int] | None = None) -> list[completion.Status]:
    """current / stale (why) / missing for task pools of a unit built by `count` tasks
    (all, or those at `indices`), the unit's fingerprint taken once for all of them."""
    settings, inputs = _fingerprint(cfg, unit)
    out = []
    for index in range(count) if indices is None else indices:
        path = layout.of(cfg).unit_shard(unit, index, count)
        out.append(completion.status(path, settings | {"shard": [index, count]}, inputs) if path.exists() else completion.Status("missing"))
    return out


def build_shard(cfg: RunConfig, unit: str, index: int, count: int, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """One task of a unit built by `count` tasks: its share of the inputs, read, filtered
    and tokenized into a pool for `build_unit`'s merge; reused while current."""
    lay = layout.of(cfg)
    final = lay.unit_shard(unit, index, count)
    (st,) = shard_statuses(cfg, unit, count, [index])
    if st and not force:
        return json.loads((final / "ingest.json").read_text(encoding="utf-8")) | {"skipped": True}
    tok = tokenizer_for(cfg)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    _, job = jobs.job(cfg, unit, tok, tmp, progress)
    settings, inputs = _fingerprint(cfg, unit)
    rec = completion.record(settings | {"shard": [index, count]}, inputs)
    try:
        stats = json.loads(_core.prep_monolingual_shard(json.dumps(jobs.shard_job(job, index, count, tmp))))
        completion.write(tmp, rec)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, final)
    return stats


def build_unit(cfg: RunConfig, unit: str, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Builds one unit unless it is current; returns its stats (`skipped` when reused,
    `rebuilt` with the reason when stale output was replaced). A unit of several tasks
    is merged from their pools, which must be built and current (`build_shard`)."""
    lay = layout.of(cfg)
    final = lay.unit(unit)
    ensure_writable(lay.prep)
    st = unit_status(cfg, unit)
    if st and not force:
        return json.loads((final / STATS).read_text(encoding="utf-8")) | {"skipped": True}
    if st.state == "stale":
        print(f"prep {unit}: {st.reason} — rebuilding", file=sys.stderr, flush=True)
    n = jobs.tasks(cfg, unit)
    pools = [lay.unit_shard(unit, k, n) for k in range(n)] if n > 1 else []
    for k, (pool, built) in enumerate(zip(pools, shard_statuses(cfg, unit, n) if pools else [])):
        if not built:
            raise MissingPathError(f"prep {unit}: task {k + 1} of {n} has not built its part ({pool}); run `xcult prep` again", str(pool))
    tok = tokenizer_for(cfg)
    tmp = lay.unit_tmp(unit)
    if tmp.exists():
        shutil.rmtree(tmp)
    kind, job = jobs.job(cfg, unit, tok, tmp, progress)
    rec = completion.record(*_fingerprint(cfg, unit))
    run = _core.prep_monolingual if kind == "monolingual" else _core.prep_bilingual
    try:
        stats = json.loads(run(json.dumps(job | ({"pools": [str(p) for p in pools]} if pools else {}))))
        stats["tool_version"] = __version__
        stats["tasks"] = n
        if st.state == "stale":
            stats["rebuilt"] = st.reason
        job_record = job | {"out_dir": str(final), "kind": kind}
        write_json_atomic(tmp / JOB, job_record)
        write_json_atomic(tmp / STATS, stats)
        completion.write(tmp, rec)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed unit leaves nothing behind (a full disk stays usable)
        raise
    replace_dir(tmp, final)
    if pools:
        shutil.rmtree(lay.unit_shards(unit), ignore_errors=True)  # merged: the pools are spent
    return stats


def write_manifest(cfg: RunConfig, unit_stats: dict[str, dict[str, Any]]) -> Path:
    """manifest.json: config, tool version, input and tokenizer hashes, every unit's stats."""
    tok = tokenizer_for(cfg)
    inputs = sorted({p for u in unit_stats for p in jobs.input_paths(cfg, u)})
    hashes = [completion.sha256(Path(p)) for p in [*inputs, str(tok)]]
    manifest = {
        "tool": "xcult",
        "tool_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_path": cfg.path,
        "config": cfg.to_dict(),
        "tokenizer": {"path": str(tok), "sha256": hashes[-1]},
        "inputs": dict(zip(inputs, hashes[:-1], strict=True)),
        "units": {u: {k: v for k, v in s.items() if k != "skipped"} for u, s in unit_stats.items()},
    }
    path = layout.of(cfg).manifest
    write_json_atomic(path, manifest)
    return path

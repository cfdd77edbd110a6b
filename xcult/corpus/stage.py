"""The prep stage: every unit not yet current through datatrove's executor (local, or
submitted to Slurm, or on Ray), then the manifest."""

from __future__ import annotations

import json
from typing import Any

from xcult import layout
from xcult.config import RunConfig
from xcult.corpus import executors, jobs, sources
from xcult.corpus.executors import Submitted
from xcult.corpus.prep import STATS, unit_status, write_manifest
from xcult.stage import StageReport


def run_prep(cfg: RunConfig, force: bool = False, executor: str | None = None, progress: bool = True) -> dict[str, dict[str, Any]] | Submitted:
    """Every unit's stats, with the manifest written; or the Slurm job still building some."""
    sources.fetch_all(cfg)  # remote inputs to local copies first (datatrove readers)
    submitted = executors.run(cfg, executor or cfg.prep.executor, force=force, progress=progress)
    if submitted is not None:
        return submitted
    stats = {}
    for unit in jobs.units(cfg):
        path = layout.of(cfg).unit(unit) / STATS
        stats[unit] = json.loads(path.read_text(encoding="utf-8"))
    write_manifest(cfg, stats)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    before = {unit: unit_status(cfg, unit) for unit in jobs.units(cfg)}
    stats = run_prep(cfg, progress=progress)
    if isinstance(stats, Submitted):
        return StageReport(f"waiting for Slurm job {stats.job_id}", pending=stats.message(cfg.path))
    tokens = sum(o["tokens"] for s in stats.values() for o in s["outputs"])
    return StageReport(
        f"{len(stats)} units, {tokens:,} tokens",
        built=[u for u, st in before.items() if st.state == "missing"],
        rebuilt=[f"{u}: {st.reason}" for u, st in before.items() if st.state == "stale"],
        current=[u for u, st in before.items() if st],
    )

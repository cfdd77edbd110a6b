"""The prep stage: every unit through datatrove's executor, then the manifest."""

from __future__ import annotations

import json
from typing import Any

from xcult import layout
from xcult.config import RunConfig
from xcult.corpus import jobs
from xcult.corpus.prep import STATS, unit_status, write_manifest
from xcult.corpus.steps import run_with_datatrove
from xcult.stage import StageReport


def run_prep(cfg: RunConfig, force: bool = False, executor: str | None = None, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Builds all units (through datatrove's executor) and writes the manifest."""
    executor = executor or cfg.prep.executor
    run_with_datatrove(cfg, executor=executor, force=force, progress=progress)
    stats = {}
    for unit in jobs.units(cfg):
        path = layout.of(cfg).unit(unit) / STATS
        stats[unit] = json.loads(path.read_text(encoding="utf-8"))
    write_manifest(cfg, stats)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    before = {unit: unit_status(cfg, unit) for unit in jobs.units(cfg)}
    stats = run_prep(cfg, executor="local", progress=progress)
    tokens = sum(o["tokens"] for s in stats.values() for o in s["outputs"])
    return StageReport(
        f"{len(stats)} units, {tokens:,} tokens",
        built=[u for u, st in before.items() if st.state == "missing"],
        rebuilt=[f"{u}: {st.reason}" for u, st in before.items() if st.state == "stale"],
        current=[u for u, st in before.items() if st],
    )

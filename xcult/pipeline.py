"""`xcult run`: every stage a config has, in order, each skipping finished work:
synth -> prep -> train (pretrain, then each language x setting) -> eval -> index +
retrieval -> judge -> density -> report. A second run only re-reads outputs; an
interrupted one resumes at the first unfinished step of the first unfinished stage."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from xcult.config import RunConfig
from xcult.errors import XcultError


@dataclass
class StageResult:
    name: str
    status: str  # "done", "skipped" (already complete), "not configured"
    seconds: float
    summary: str = ""


class StageFailed(XcultError):
    """A stage of `xcult run` failed; the message names it."""


def _synth(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.synth.write import run_synth

    s = run_synth(cfg)
    note = f" (rebuilt: {s['rebuilt']})" if s.get("rebuilt") else ""
    return bool(s.get("skipped")), f"{s['facts']} facts, {s['documents_en']:,} en / {s['documents_native']:,} {s['language']} documents, {s['parallel_pairs']:,} pairs{note}"


def _prep(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.corpus import jobs
    from xcult.corpus.prep import run_prep, unit_status

    before = {unit: unit_status(cfg, unit) for unit in jobs.units(cfg)}
    stats = run_prep(cfg, executor="local", progress=progress)
    tokens = sum(o["tokens"] for s in stats.values() for o in s["outputs"])
    rebuilt = [f"{u} ({st.reason})" for u, st in before.items() if st.state == "stale"]
    note = f"; rebuilt {', '.join(rebuilt)}" if rebuilt else ""
    return all(before.values()), f"{len(stats)} units, {tokens:,} tokens{note}"


def _train(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.train import launch

    runs = launch.runs(cfg)
    todo = [r for r in runs if not launch.is_done(cfg, r)]
    for run in todo:
        rc = launch.launch(cfg, run, [])
        if rc != 0:
            raise StageFailed(f"train: {run.name}: torchrun exited with {rc} (its log is above; `xcult run` again resumes it)")
    return not todo, f"{len(runs)} runs ({len(todo)} trained now)"


def _eval(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.eval.run import run_eval

    s = run_eval(cfg, progress=progress)
    rescored = f", {s['checkpoints_rescored']} of them stale" if s["checkpoints_rescored"] else ""
    return s["checkpoints_scored"] == 0, f"{s['checkpoints_scored'] + s['checkpoints_skipped']} checkpoints ({s['checkpoints_scored']} scored now{rescored})"


def _index(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.density.index import build_indexes, retrieve_probes

    stats = build_indexes(cfg)
    retrieve_probes(cfg)
    return all(s.get("skipped") for s in stats.values()), ", ".join(f"{c}: {s['chunks']:,} chunks" for c, s in stats.items())


def _judge(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.density.judge import run_judge

    s = run_judge(cfg, progress=progress)
    return s["judged"] == 0, f"{cfg.judge.backend} judge: {s['pairs']:,} pairs, {s['cached']:,} cached, {s['entailed']:,} entailed"


def _density(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.density.density import run_density

    s = run_density(cfg)
    return False, f"{s['probes']} probe x corpus rows; documents {s['documents']}"


def _report(cfg: RunConfig, progress: bool) -> tuple[bool, str]:
    from xcult.report.build import build_report

    return False, str(build_report(cfg))


STAGES: list[tuple[str, Callable[[RunConfig], bool], Callable]] = [
    ("synth", lambda c: c.synth is not None, _synth),
    ("prep", lambda c: c.prep.english is not None or bool(c.prep.languages), _prep),
    ("train", lambda c: c.train is not None, _train),
    ("eval", lambda c: c.eval is not None and c.train is not None, _eval),
    ("index", lambda c: c.eval is not None, _index),
    ("judge", lambda c: c.eval is not None and c.judge is not None, _judge),
    ("density", lambda c: c.eval is not None and c.judge is not None, _density),
    ("report", lambda c: c.eval is not None, _report),
]


def run_all(cfg: RunConfig, progress: bool = True, echo: Callable[[str], None] = print) -> list[StageResult]:
    results = []
    for name, configured, fn in STAGES:
        if not configured(cfg):
            results.append(StageResult(name, "not configured", 0.0))
            continue
        echo(f"== {name}")
        t0 = time.perf_counter()
        try:
            skipped, summary = fn(cfg, progress)
        except XcultError as e:
            raise StageFailed(f"{name}: {e}") from e
        results.append(StageResult(name, "skipped" if skipped else "done", time.perf_counter() - t0, summary))
    return results

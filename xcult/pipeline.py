"""`xcult run`: every stage a config has, in order (`xcult.stage.STAGES`): synth -> prep
-> train (pretrain, then each language x setting) -> eval -> index + retrieval -> judge
-> density -> report. Each stage reuses current output, rebuilds stale output (saying
why) and builds what is missing; an interrupted run resumes at the first unfinished
step of the first unfinished stage. A stage that submits work to a cluster (prep on
Slurm) ends the run; running it again continues once the cluster has finished."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from xcult.config import RunConfig
from xcult.errors import XcultError
from xcult.stage import STAGES


@dataclass(frozen=True)
class StageResult:
    name: str
    status: str  # "current", "built", "rebuilt (why)", "not configured"
    seconds: float
    summary: str = ""
    pending: str | None = None  # the stage handed work to a cluster; run again after it


class StageFailed(XcultError):
    """A stage of `xcult run` failed; the message names it."""


def run_all(cfg: RunConfig, progress: bool = True, echo: Callable[[str], None] = print) -> list[StageResult]:
    results = []
    for stage in STAGES:
        if not stage.configured(cfg):
            results.append(StageResult(stage.name, "not configured", 0.0))
            continue
        echo(f"== {stage.name}")
        t0 = time.perf_counter()
        try:
            report = stage.run(cfg, progress)
        except XcultError as e:
            raise StageFailed(f"{stage.name}: {e}") from e
        results.append(StageResult(stage.name, report.state, time.perf_counter() - t0, report.summary, report.pending))
        if report.pending:
            break
    return results

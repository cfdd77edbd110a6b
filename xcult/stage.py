"""The stage protocol. Every stage is one function `run(cfg, progress) -> StageReport`
in its package (`xcult.<package>.stage`), which builds what is missing, rebuilds what
is stale (the completion records of `xcult/completion.py` say why) and reuses what is
current. `xcult run` is a loop over `STAGES`; each CLI command calls the same functions.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from xcult.completion import Status
    from xcult.config import RunConfig


@dataclass(frozen=True)
class StageReport:
    """What one stage did: the parts it built from nothing, rebuilt (each `part: why`)
    and reused, with a one-line summary of its outputs. `pending` says what the stage
    handed to a cluster and how to continue; `xcult run` stops after such a stage."""

    summary: str
    built: list[str] = field(default_factory=list)
    rebuilt: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    pending: str | None = None

    @property
    def state(self) -> str:
        if self.pending:
            return "pending"
        if self.rebuilt:
            return "rebuilt (" + "; ".join(self.rebuilt) + ")"
        return "built" if self.built else "current"


def parts(name: str, status: Status) -> dict[str, list[str]]:
    """StageReport's lists for one part whose status was taken before the stage ran."""
    if status.state == "missing":
        return {"built": [name]}
    return {"rebuilt": [f"{name}: {status.reason}"]} if status.state == "stale" else {"current": [name]}


@dataclass(frozen=True)
class Stage:
    name: str
    configured: Callable[[RunConfig], bool]
    target: str  # "module:function", imported only when the stage runs

    def run(self, cfg: RunConfig, progress: bool) -> StageReport:
        module, function = self.target.split(":")
        return getattr(importlib.import_module(module), function)(cfg, progress)


STAGES = [
    Stage("synth", lambda c: c.synth is not None, "xcult.synth.write:stage"),
    Stage("prep", lambda c: c.prep.english is not None or bool(c.prep.languages), "xcult.corpus.stage:stage"),
    Stage("train", lambda c: c.train is not None, "xcult.train.launch:stage"),
    Stage("eval", lambda c: c.eval is not None and c.train is not None, "xcult.eval.run:stage"),
    Stage("index", lambda c: c.eval is not None, "xcult.density.index:stage"),
    Stage("count", lambda c: c.eval is not None and c.count is not None, "xcult.density.count:stage"),
    Stage("judge", lambda c: c.eval is not None and c.judge is not None, "xcult.density.judge:stage"),
    Stage("density", lambda c: c.eval is not None and c.judge is not None, "xcult.density.density:stage"),
    Stage("report", lambda c: c.eval is not None, "xcult.report.build:stage"),
]

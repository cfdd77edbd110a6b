"""The prep stage as datatrove pipeline steps, so datatrove's executors (local,
Slurm, Ray) distribute it: rank r builds units r, r + world_size, ... Datatrove
leaves a completion marker per rank, and each unit also skips itself when complete.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys

from datatrove.pipeline.base import PipelineStep

from xcult import layout
from xcult.config import RunConfig, load_config
from xcult.corpus import jobs
from xcult.corpus.prep import build_unit
from xcult.errors import UnwritablePathError, XcultError


class PrepUnits(PipelineStep):
    name = "xcult prep"
    type = "Tokenizer"

    def __init__(self, config_path: str, force: bool = False, progress: bool = True):
        super().__init__()
        self.config_path = config_path
        self.force = force
        self.progress = progress

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        cfg = load_config(self.config_path)
        for unit in jobs.units(cfg)[rank::world_size]:
            with self.track_time():
                stats = build_unit(cfg, unit, force=self.force, progress=self.progress)
            if stats.get("skipped"):
                self.stat_update("units_skipped")
                continue
            self.stat_update("units_built")
            for out in stats["outputs"]:
                self.stat_update("documents", value=out["documents"])
                self.stat_update("tokens", value=out["tokens"])
        yield from data or ()


class _WithoutLoguru(io.TextIOBase):
    """stderr for datatrove's local run: its loguru lines (each one write starting with a
    timestamp, tracebacks included) go only to its log files, and so do loguru's own
    reports of a log file it could not write (a full disk); everything else passes."""

    LINE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| ")

    def __init__(self, stream):
        self.stream = stream
        self.in_loguru_error = False

    def write(self, text: str) -> int:
        if text.startswith("--- Logging error in Loguru"):
            self.in_loguru_error = True
        if self.in_loguru_error:
            self.in_loguru_error = "--- End of logging error ---" not in text
            return len(text)
        return len(text) if self.LINE.match(text) else self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _quiet_datatrove(logs: str):
    """datatrove prints every step and the full traceback of a failure on stderr; the
    user gets the one clean error line and the log path (`xcult --debug` shows all)."""
    if os.environ.get("XCULT_DEBUG"):
        yield
        return
    try:
        with contextlib.redirect_stderr(_WithoutLoguru(sys.stderr)):
            yield
    except XcultError:
        print(f"prep: datatrove's log of this run: {logs}/logs/", file=sys.stderr, flush=True)
        raise
    except OSError as e:  # datatrove's own writes (logs, stats) on a full or read-only disk
        where = e.filename or logs
        raise UnwritablePathError(f"{where}: cannot write: {e.strerror}", str(where)) from None


@contextlib.contextmanager
def _managers_die_with_us():
    """datatrove's local executor starts a multiprocess Manager (a server process) that
    outlives a killed `xcult prep`; started with `die_with_parent`, it goes with us."""
    import multiprocess
    from multiprocess.managers import SyncManager

    from training.lifetime import die_with_parent

    def manager():
        m = SyncManager(ctx=multiprocess.get_context())
        m.start(initializer=die_with_parent)
        return m

    original, multiprocess.Manager = multiprocess.Manager, manager
    try:
        yield
    finally:
        multiprocess.Manager = original


def run_with_datatrove(cfg: RunConfig, executor: str, force: bool, progress: bool) -> None:
    units = jobs.units(cfg)
    logs = str(layout.of(cfg).prep_logs)
    step = PrepUnits(cfg.path, force=force, progress=progress)
    # Units mark their own completion (stats.json), so datatrove's markers are not consulted:
    # a stale marker must never hide a unit whose outputs were removed.
    common = {"pipeline": [step], "tasks": len(units), "logging_dir": logs, "skip_completed": False}
    if executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        with _quiet_datatrove(logs), _managers_die_with_us():
            LocalPipelineExecutor(workers=1, **common).run()
    elif executor == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        p = cfg.prep
        SlurmPipelineExecutor(
            job_name=f"xcult-prep-{cfg.experiment.name}",
            partition=p.slurm_partition,
            time=p.slurm_time,
            cpus_per_task=p.slurm_cpus_per_task,
            mem_per_cpu_gb=p.slurm_mem_per_cpu_gb,
            **common,
        ).run()
    else:
        from datatrove.executor import RayPipelineExecutor

        RayPipelineExecutor(**common).run()

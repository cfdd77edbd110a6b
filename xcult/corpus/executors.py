"""The prep step on datatrove's executors, one task per unit still to build, or per
share of a unit built by several tasks (`prep.english.tasks`), whose merges then run
as a second round of tasks.

- local: here, one task at a time (each unit already uses every core).
- slurm: one array job through datatrove's `SlurmPipelineExecutor` (and one for the
  merges, after it); submission returns at once with the job ids (`Submitted`),
  recorded in `prep/submitted.json`. A later
  `xcult prep` or `xcult run` reports the job while it is queued or running, takes the
  units it built (each has its completion record), and names the logs when it ended
  without building them.
- ray: `RayPipelineExecutor` on the cluster at `prep.ray_address` (empty: a local Ray
  started for this run); returns when every task has ended.
The cluster settings are checked against the cluster before anything is submitted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from xcult import layout
from xcult.config import RunConfig, slurm_minutes, validate
from xcult.corpus import jobs
from xcult.corpus.prep import shard_statuses, unit_status
from xcult.corpus.steps import PrepUnits, item
from xcult.errors import ConfigError, ExecutorError, UnwritablePathError, XcultError
from xcult.io import write_json_atomic

# squeue states of a job that may still build units.
_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}


@dataclass(frozen=True)
class Submitted:
    """Slurm jobs building `units`, queued or running; run the stage again after them."""

    job_ids: list[str]
    units: list[str]
    logs: Path
    state: str  # "submitted" just now, else squeue's state (PENDING, RUNNING, ...)

    @property
    def job_id(self) -> str:
        return ",".join(self.job_ids)

    def message(self, config_path: str) -> str:
        verb = "submitted" if self.state == "submitted" else f"still {self.state.lower()}:"
        jobs_ = "job" if len(self.job_ids) == 1 else "jobs"
        return (
            f"prep: {verb} Slurm {jobs_} {self.job_id} building {', '.join(self.units)} "
            f"(logs: {self.logs}/slurm_logs/<job>_*.out; watch: squeue -j {self.job_id}).\n"
            f"When it has finished, run `xcult prep {config_path}` (or `xcult run`) again: it takes the built units and writes the manifest."
        )


def run(cfg: RunConfig, executor: str, force: bool, progress: bool) -> Submitted | None:
    """Builds (or submits) every unit that is not current; None when all are built."""
    validate(dataclasses.replace(cfg, prep=dataclasses.replace(cfg.prep, executor=executor)))
    lay = layout.of(cfg)
    units = [u for u in jobs.units(cfg) if force or not unit_status(cfg, u)]
    first, merges = _rounds(cfg, units, force)
    if executor == "slurm":
        return _slurm(cfg, units, first, merges, force)
    if lay.prep_submitted.exists():
        lay.prep_submitted.unlink()  # a local or Ray build supersedes a submitted job's record
    rounds = [(PrepUnits(_absolute(cfg), items, force=force, progress=progress), logs) for items, logs in ((first, lay.prep_logs), (merges, lay.prep_logs / "merge")) if items]
    if executor == "local":
        for step, logs in rounds:
            _local(step, logs)
    elif rounds:
        _ray(cfg, rounds)
    _check_built(cfg, units, f"the {executor} executor", lay.prep_logs / "logs")
    return None


def _rounds(cfg: RunConfig, units: list[str], force: bool) -> tuple[list[str], list[str]]:
    """The items of the first round (whole units, and the shares of units built by several
    tasks) and of the second (those units' merges)."""
    first, merges = [], []
    for u in units:
        n = jobs.tasks(cfg, u)
        if n == 1:
            first.append(item(u))
        else:
            first += [item(u, k, n) for k, built in enumerate(shard_statuses(cfg, u, n)) if force or not built]
            merges.append(item(u))
    return first, merges


def _absolute(cfg: RunConfig) -> str:
    """The config path as cluster tasks (another working directory) must open it."""
    return str(Path(cfg.path).resolve())


def _check_built(cfg: RunConfig, units: list[str], by: str, logs: Path) -> None:
    missing = [u for u in units if not unit_status(cfg, u)]
    if missing:
        raise ExecutorError(f"prep: {by} ended without building {', '.join(missing)}; its logs: {logs}", str(logs))


def _common(step: PrepUnits, logs: Path) -> dict:
    # Units carry their own completion records, so datatrove's markers are not consulted:
    # a stale marker must never hide a unit whose outputs were removed.
    return {"pipeline": [step], "tasks": len(step.items), "logging_dir": str(logs), "skip_completed": False}


# -- local ---------------------------------------------------------------------------


def _local(step: PrepUnits, logs: Path) -> None:
    from datatrove.executor import LocalPipelineExecutor

    with _quiet_datatrove(str(logs)), _managers_die_with_us():
        LocalPipelineExecutor(workers=1, **_common(step, logs)).run()


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


# -- Slurm ---------------------------------------------------------------------------


def _slurm(cfg: RunConfig, units: list[str], first: list[str], merges: list[str], force: bool) -> Submitted | None:
    lay = layout.of(cfg)
    record = lay.prep_submitted
    if record.exists():
        sub = json.loads(record.read_text(encoding="utf-8"))
        state = slurm_state(",".join(sub["job_ids"]))
        if state is not None and units:
            return Submitted(sub["job_ids"], sub["units"], lay.prep_logs, state)
        record.unlink()
        failed = [u for u in sub["units"] if not unit_status(cfg, u)]
        if failed:
            logs = ", ".join(f"{lay.prep_logs}/slurm_logs/{j}_*.out" for j in sub["job_ids"])
            raise ExecutorError(
                f"prep: Slurm job {','.join(sub['job_ids'])} has ended without building {', '.join(failed)}; "
                f"its logs: {logs} (run `xcult prep` again to resubmit what is missing)",
                str(lay.prep_logs / "slurm_logs"),
            )
    if not units:
        return None
    check_slurm(cfg)
    from datatrove.executor import SlurmPipelineExecutor

    p = cfg.prep

    def executor(items: list[str], logs: Path, name: str, depends=None) -> SlurmPipelineExecutor:
        return SlurmPipelineExecutor(
            job_name=f"xcult-{name}-{cfg.experiment.name}",
            partition=p.slurm_partition,
            time=p.slurm_time,
            cpus_per_task=p.cpus_per_task,
            mem_per_cpu_gb=p.mem_per_cpu_gb,
            qos="",  # the cluster's default
            # The tasks run this interpreter's environment (datatrove's launcher and xcult).
            env_command=f"export PATH={shlex.quote(str(Path(sys.executable).parent))}:$PATH",
            # Every merge task's log beside the first round's, so one folder holds them all.
            slurm_logs_folder=str(lay.prep_logs / "slurm_logs"),
            depends=depends,
            **_common(PrepUnits(_absolute(cfg), items, force=force, progress=False), logs),
        )

    build = executor(first, lay.prep_logs, "prep") if first else None
    merge = executor(merges, lay.prep_logs / "merge", "prep-merge", depends=build) if merges else None
    try:
        with _quiet_datatrove(str(lay.prep_logs)):
            (merge or build).run()  # a merge job launches the job it depends on first
    except subprocess.CalledProcessError as e:
        raise ExecutorError(f"prep: sbatch refused the job (exit {e.returncode}): {(e.output or b'').decode().strip()}", str(lay.prep_logs)) from None
    job_ids = [str(x.job_id) for x in (build, merge) if x is not None and x.job_id not in (None, -1)]
    write_json_atomic(record, {"job_ids": job_ids, "units": units, "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return Submitted(job_ids, units, lay.prep_logs, "submitted")


def slurm_state(job_id: str) -> str | None:
    """The job's state while Slurm may still run it (an array's most advanced task), else None."""
    out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    states = set(out.stdout.split()) & _ACTIVE if out.returncode == 0 else set()
    for state in ("RUNNING", "COMPLETING", "CONFIGURING", "PENDING"):
        if state in states:
            return state
    return min(states) if states else None


def check_slurm(cfg: RunConfig) -> None:
    """The Slurm settings against the cluster (`sinfo`): the partition exists and one of
    its nodes holds a task's cores, memory and time; a ConfigError names the key."""
    p = cfg.prep
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise ConfigError("prep.executor = slurm, but sbatch/sinfo are not on PATH: run on a Slurm login node", "prep.executor")
    out = subprocess.run(["sinfo", "-h", "-p", p.slurm_partition, "-o", "%c|%m|%l"], capture_output=True, text=True)
    rows = [line.split("|") for line in out.stdout.split()]
    if out.returncode != 0 or not rows:
        listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True).stdout.split()
        raise ConfigError(f"prep.slurm_partition: the cluster has no partition {p.slurm_partition!r} (it has: {', '.join(listed) or 'none'})", "prep.slurm_partition")
    cpus = max(int(c.rstrip("+")) for c, _, _ in rows)
    mem_mb = max(int(m.rstrip("+")) for _, m, _ in rows)
    limit = max(slurm_minutes(t) or 0 for _, _, t in rows)
    if p.cpus_per_task > cpus:
        raise ConfigError(f"prep.cpus_per_task: {p.cpus_per_task} cores, but the nodes of {p.slurm_partition!r} have at most {cpus}", "prep.cpus_per_task")
    if p.cpus_per_task * p.mem_per_cpu_gb * 1024 > mem_mb:
        raise ConfigError(
            f"prep.mem_per_cpu_gb: {p.cpus_per_task} x {p.mem_per_cpu_gb} GB per task, but the nodes of {p.slurm_partition!r} have at most {mem_mb / 1024:.1f} GB",
            "prep.mem_per_cpu_gb",
        )
    if slurm_minutes(p.slurm_time) > limit:
        raise ConfigError(f"prep.slurm_time: {p.slurm_time} is over the time limit of {p.slurm_partition!r}", "prep.slurm_time")


# -- Ray -----------------------------------------------------------------------------


def _ray(cfg: RunConfig, rounds: list[tuple[PrepUnits, Path]]) -> None:
    try:
        import ray
        from datatrove.executor import RayPipelineExecutor
    except ImportError as e:
        raise ConfigError(f"prep.executor = ray needs Ray: pip install 'xcult[scale]' ({e})", "prep.executor") from None
    p = cfg.prep
    started = not ray.is_initialized()
    if started:
        ray.init(address=p.ray_address or None, include_dashboard=False, log_to_driver=False, logging_level="warning")
    try:
        have = ray.cluster_resources().get("CPU", 0)
        if p.cpus_per_task > have:
            raise ConfigError(f"prep.cpus_per_task: {p.cpus_per_task} cores per task, but the Ray cluster has {have:g}", "prep.cpus_per_task")
        for step, logs in rounds:  # the merges after the tasks whose pools they read
            with _quiet_datatrove(str(logs)):
                RayPipelineExecutor(cpus_per_task=p.cpus_per_task, mem_per_cpu_gb=p.mem_per_cpu_gb, **_common(step, logs)).run()
    finally:
        if started:
            ray.shutdown()

"""`xcult train`: one job file per run, one torchrun command per run.

Runs: `pretrain` (English) and `ct-<lang>-<bridges>` for every language in the config,
continuing from the pretrained model. Each run directory holds job.json, config.json,
the checkpoints (`iter_<step:07d>/`), metrics.jsonl and, once finished, done.json.
Everything that can be checked is checked here, before any process starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from xcult import completion, layout
from xcult.config import RunConfig, ScheduleConfig
from xcult.errors import ConfigError, MissingPathError, StaleOutputError, TrainingFailed
from xcult.io import ensure_writable, write_json_atomic
from xcult.presets import PRESETS
from xcult.stage import StageReport
from xcult.tokenizer import tokenizer_for

BRIDGES = ("with", "without")
MASTER_PORT = 29500


@dataclass(frozen=True)
class Run:
    name: str  # pretrain | ct-<lang>-<bridges>
    stage: str  # pretrain | ct
    lang: str = "en"
    bridges: str = ""


def runs(cfg: RunConfig) -> list[Run]:
    """Every run of the study, in the order they must happen (no pretraining when
    continued pretraining starts from `train.init_from`)."""
    out = [] if cfg.train.init_from else [Run("pretrain", "pretrain")]
    for lang in cfg.prep.languages:
        out += [Run(f"ct-{lang}-{b}", "ct", lang, b) for b in BRIDGES]
    return out


def find_run(cfg: RunConfig, stage: str, lang: str | None, bridges: str | None) -> Run:
    if stage == "pretrain":
        if cfg.train.init_from:
            raise ConfigError(f"train.init_from = {cfg.train.init_from!r}: continued pretraining starts from it; this study has no pretraining run", "train.init_from")
        return Run("pretrain", "pretrain")
    if lang not in cfg.prep.languages:
        raise ConfigError(f"--lang {lang!r}: not a language of prep.languages ({', '.join(cfg.prep.languages)})", "prep.languages")
    if bridges not in BRIDGES:
        raise ConfigError("--bridges must be with or without", "bridges")
    return Run(f"ct-{lang}-{bridges}", "ct", lang, bridges)


def run_dir(cfg: RunConfig, run: Run) -> Path:
    return layout.of(cfg).run(run.name)


def init_root(cfg: RunConfig) -> Path:
    """The run continued pretraining starts from: `train.init_from`, else this study's pretraining."""
    return Path(cfg.train.init_from) if cfg.train.init_from else run_dir(cfg, Run("pretrain", "pretrain"))


def data_prefix(cfg: RunConfig, run: Run) -> Path:
    return layout.of(cfg).data_prefix(run.lang, run.bridges or None)


def _inputs(cfg: RunConfig, run: Run) -> list[Path]:
    """The files a run's weights depend on: its corpora (.bin/.idx, the replayed English
    one too), the tokenizer and, for continued pretraining, the pretrained run's record."""
    t = cfg.train
    prefixes = [data_prefix(cfg, run)]
    if run.stage == "ct":
        if t.replay_english:
            prefixes.append(data_prefix(cfg, Run("pretrain", "pretrain")))
    files = [p.with_suffix(ext) for p in prefixes for ext in (".bin", ".idx")] + [tokenizer_for(cfg)]
    if run.stage == "ct":
        files.append(init_root(cfg) / "done.json")
    return files


def _settings(job: dict) -> dict:
    """What a run's weights depend on: the job without paths of its own, logging and the
    CPU thread count."""
    return {k: v for k, v in job.items() if k not in ("out", "cache_dir", "log_every", "threads", "experiment", "tensorboard", "wandb")}


def run_status(cfg: RunConfig, run: Run) -> completion.Status:
    """current / stale (why) / missing for a run's directory (finished or not)."""
    d = run_dir(cfg, run)
    if not d.exists():
        return completion.Status("missing")
    return completion.status(d, _settings(job(cfg, run, dry_run=True)), _inputs(cfg, run))


def is_done(cfg: RunConfig, run: Run) -> bool:
    """A finished run that is current. A run trained on inputs that have since changed
    is an error: retraining destroys its checkpoints, so it needs `--force`."""
    d = run_dir(cfg, run)
    if not (d / "done.json").exists():
        return False
    _refuse_if_stale(cfg, run)
    return True


def _refuse_if_stale(cfg: RunConfig, run: Run) -> None:
    st = run_status(cfg, run)
    if st.state == "stale":
        d = run_dir(cfg, run)
        how = "--stage pretrain" if run.stage == "pretrain" else f"--stage ct --lang {run.lang} --bridges {run.bridges}"
        raise StaleOutputError(
            f"{run.name}: {st.reason}; its checkpoints in {d} were trained on what was there before. "
            f"Retrain with `xcult train {cfg.path} {how} --force` (deletes them), or restore the inputs.",
            str(d),
        )


def _steps(s: ScheduleConfig, tokens_per_step: int) -> int:
    return s.steps if s.steps is not None else math.ceil(s.tokens / tokens_per_step)


def _use_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _te_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("transformer_engine") is not None


def job(cfg: RunConfig, run: Run, dry_run: bool = False) -> dict:
    """The resolved job for `training/train.py`; raises before any process starts.
    A dry run does not require the pretrained checkpoint to exist yet."""
    t = cfg.train
    prefix = data_prefix(cfg, run)
    needed = [prefix] + ([data_prefix(cfg, Run("pretrain", "pretrain"))] if run.stage == "ct" and t.replay_english else [])
    for ext, prefix_ in ((e, p) for p in needed for e in (".bin", ".idx")):
        if not prefix_.with_suffix(ext).is_file():
            raise MissingPathError(f"corpus {prefix_}{ext} does not exist: run `xcult prep {cfg.path}` first", f"{prefix_}{ext}")
    init_from = None
    if run.stage == "ct":
        from training.checkpoint import latest

        pre = init_root(cfg)
        found = latest(pre) if (pre / "done.json").exists() else None
        if found is None and t.init_from:
            raise MissingPathError(f"train.init_from: {pre} holds no finished run (write one with `xcult import`)", str(pre))
        if found is None and not dry_run:
            raise MissingPathError(f"{run.name} continues the pretrained model, but {pre} holds no finished run", str(pre))
        init_from = str(found[1]) if found else str(pre / "iter_<final>")
    cuda = _use_cuda()
    bf16 = t.precision == "bf16" or (t.precision == "auto" and cuda)
    use_te = t.transformer_engine == "on" or (t.transformer_engine == "auto" and cuda and _te_available())
    if use_te and not cuda:
        raise ConfigError("train.transformer_engine = 'on' needs CUDA", "train.transformer_engine")
    sched: ScheduleConfig = getattr(t, run.stage)
    replay = t.replay_english if run.stage == "ct" else 0.0
    arch = PRESETS[t.model]
    if t.vocab_size is not None:
        arch = dataclasses.replace(arch, vocab_size=t.vocab_size)
    tokens_per_step = t.global_batch_size * t.seq_length
    tok = tokenizer_for(cfg)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tok))
    if tokenizer.get_vocab_size() > arch.vocab_size:
        raise ConfigError(
            f"train.vocab_size: the model's {arch.vocab_size:,} embeddings cannot hold the tokenizer's {tokenizer.get_vocab_size():,} ids",
            "train.vocab_size",
        )
    eod = tokenizer.token_to_id(cfg.tokenizer.eod)
    if run.stage == "ct" and t.init_from:
        _check_init_from(cfg, arch.to_dict(), tokenizer, eod)
    return {
        "name": run.name,
        "stage": run.stage,
        "arch": arch.to_dict(),
        "flops_per_token": arch.flops_per_token(t.seq_length),
        "seq_length": t.seq_length,
        "micro_batch_size": t.micro_batch_size,
        "global_batch_size": t.global_batch_size,
        "steps": _steps(sched, tokens_per_step),
        "schedule": {**vars(sched)},
        "data_prefix": str(prefix),
        # Continued pretraining may replay English (Megatron blends by sample weight).
        "data_blend": [[str(prefix), 1.0 - replay], [str(data_prefix(cfg, Run("pretrain", "pretrain"))), replay]] if replay else [[str(prefix), 1.0]],
        "eod": eod,
        "tokenizer": str(tok),
        "init_from": init_from,
        "out": str(run_dir(cfg, run)),
        "cache_dir": str(layout.of(cfg).checkpoints / "data_cache"),
        "seed": cfg.experiment.seed,
        "bf16": bf16,
        "use_te": use_te,
        "distributed_optimizer": t.distributed_optimizer == "on" or (t.distributed_optimizer == "auto" and cuda),
        "log_every": t.log_every,
        "threads": t.threads,
        "experiment": cfg.experiment.name,
        "tensorboard": str(layout.Layout.tensorboard(run_dir(cfg, run))),
        # One W&B run per xcult run (its id from the run directory), resumed across launches.
        "wandb": {"project": t.wandb_project, "entity": t.wandb_entity, "id": "xcult-" + hashlib.sha1(str(run_dir(cfg, run).resolve()).encode()).hexdigest()[:16]}
        if t.wandb_project
        else None,
    }


def _check_init_from(cfg: RunConfig, arch: dict, tokenizer, eod: int) -> None:
    """The run `train.init_from` names must have the architecture train.model builds and
    the tokenizer the corpora were tokenized with: weights of another shape cannot load,
    and another vocabulary would load and then read every id wrongly."""
    import json

    from tokenizers import Tokenizer

    source = json.loads((init_root(cfg) / "job.json").read_text())
    diff = {k: (v, arch.get(k)) for k, v in source["arch"].items() if arch.get(k) != v}
    if diff:
        listed = ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
        raise ConfigError(f"train.model = {cfg.train.model!r} differs from the model in {cfg.train.init_from} ({listed}: its vs the preset's)", "train.model")
    if Tokenizer.from_file(source["tokenizer"]).get_vocab() != tokenizer.get_vocab() or source["eod"] != eod:
        raise ConfigError(
            f"train.init_from: the model in {cfg.train.init_from} was trained with the tokenizer {source['tokenizer']} (EOS id {source['eod']}), "
            f"not the one this study's corpora use ({tokenizer_for(cfg)}, EOS id {eod})",
            "train.init_from",
        )


def torchrun_command(cfg: RunConfig, job_path: Path, extra: list[str] | None = None) -> list[str]:
    """torchrun with this interpreter; rendezvous from the config, else from Slurm's
    environment (first node of the allocation), else a single node."""
    t = cfg.train
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(t.nproc_per_node), "--nnodes", str(t.nnodes)]
    endpoint = t.rdzv_endpoint or _slurm_endpoint()
    if t.nnodes > 1:
        if not endpoint:
            raise ConfigError("train.rdzv_endpoint: a multi-node run needs host:port (or run under Slurm)", "train.rdzv_endpoint")
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", os.environ.get("SLURM_JOB_ID", "xcult")]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", "training.train", "--job", str(job_path), *(extra or [])]


def _slurm_endpoint() -> str:
    nodes = os.environ.get("SLURM_JOB_NODELIST")
    if not nodes:
        return ""
    first = subprocess.run(["scontrol", "show", "hostnames", nodes], capture_output=True, text=True, check=True).stdout.split()[0]
    return f"{first}:{MASTER_PORT}"


def prepare(cfg: RunConfig, run: Run, force: bool = False) -> tuple[dict, Path]:
    """Writes the run's job.json, resolved config and completion record and returns the
    job. A partly trained run resumes only when current; `force` starts it afresh."""
    j = job(cfg, run)
    d = run_dir(cfg, run)
    if force and d.exists():
        shutil.rmtree(d)
    elif d.exists():
        _refuse_if_stale(cfg, run)
    ensure_writable(d)
    write_json_atomic(d / "job.json", j)
    write_json_atomic(d / "config.json", cfg.to_dict())
    completion.write(d, completion.record(_settings(j), _inputs(cfg, run)))
    return j, d / "job.json"


def launch(cfg: RunConfig, run: Run, extra: list[str] | None = None, force: bool = False) -> int:
    _, job_path = prepare(cfg, run, force)
    cmd = torchrun_command(cfg, job_path, extra)
    print("+ " + shlex.join(cmd), flush=True)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # so `-m training.train` resolves from a checkout too
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    from training.lifetime import die_with_parent

    return subprocess.run(cmd, env=env, preexec_fn=die_with_parent).returncode


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    """Trains every run that is not finished; a finished run trained on inputs that have
    since changed stops the stage (`is_done`), since retraining destroys checkpoints."""
    report: dict[str, list[str]] = {"built": [], "rebuilt": [], "current": []}
    for run in runs(cfg):
        if is_done(cfg, run):
            report["current"].append(run.name)
            continue
        # a partly trained run resumes (it was current, or prepare() refuses)
        report["built"].append(run.name)
        rc = launch(cfg, run, [])
        if rc != 0:
            raise TrainingFailed(f"{run.name}: torchrun exited with {rc} (its log is above; run again to resume)", str(run_dir(cfg, run)))
    return StageReport(f"{len(runs(cfg))} runs ({len(report['built'])} trained now)", **report)

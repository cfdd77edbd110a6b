"""Checkpoints with Megatron-Core dist_checkpointing: `iter_<step:07d>/` per save.

A save goes to `.iter_<step>.tmp/` and is renamed into place when every rank has
written, so an `iter_*` directory is always complete and a killed run resumes from the
newest one (a `.tmp` left by a kill is ignored and replaced). Each checkpoint lists its
files with size and SHA-256 (`files.json`); loading checks them first, so a truncated or
altered shard is an error naming the file, never weights loaded in silence. Model, optimizer and scheduler state, the step and the RNG states are saved
(the step-0 checkpoint has no optimizer state: Adam has none before its first step).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import torch
from megatron.core import dist_checkpointing

from training.runtime import unwrap

ITER = re.compile(r"^iter_(\d{7})$")
FILES = "files.json"


class DamagedCheckpoint(ValueError):
    """A checkpoint file that is missing or differs from what was saved; `path` is it."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _listing(d: Path) -> dict[str, dict]:
    return {
        str(p.relative_to(d)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(d.rglob("*"))
        if p.is_file() and p.name != FILES
    }


def verify(path: Path) -> None:
    """Raises DamagedCheckpoint unless every file `files.json` lists has its saved size
    and hash (checkpoints written before the listing existed are not checked)."""
    listing = path / FILES
    if not listing.is_file():
        return
    for name, want in json.loads(listing.read_text()).items():
        f = path / name
        if not f.is_file():
            raise DamagedCheckpoint(f"checkpoint file {f} is missing", f)
        size = f.stat().st_size
        if size != want["size"]:
            raise DamagedCheckpoint(f"checkpoint file {f} has {size:,} bytes; {want['size']:,} were saved (truncated or replaced)", f)
        if _sha256(f) != want["sha256"]:
            raise DamagedCheckpoint(f"checkpoint file {f} differs from what was saved (SHA-256 mismatch)", f)


def iter_dir(root: Path, step: int) -> Path:
    return root / f"iter_{step:07d}"


def checkpoints(root: Path) -> dict[int, Path]:
    if not root.is_dir():
        return {}
    return {int(m.group(1)): p for p in root.iterdir() if (m := ITER.match(p.name)) and p.is_dir()}


def latest(root: Path) -> tuple[int, Path] | None:
    found = checkpoints(root)
    return max(found.items()) if found else None


def _rank0() -> bool:
    return torch.distributed.get_rank() == 0


def save(root: Path, step: int, model, optimizer=None, scheduler=None) -> Path:
    """Saves `iter_<step>` under `root`; without optimizer and scheduler (`xcult import`)
    only the model, the step and the RNG states."""
    final, tmp = iter_dir(root, step), root / f".iter_{step:07d}.tmp"
    if _rank0():
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    torch.distributed.barrier()
    msd = unwrap(model).sharded_state_dict()
    state = {
        "model": msd,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "step": step,
        "rng": {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None},
    }
    if step > 0 and optimizer is not None:  # before the first step Adam has no state to save
        state["optimizer"] = optimizer.sharded_state_dict(msd)
    dist_checkpointing.save(state, str(tmp))
    torch.distributed.barrier()
    if _rank0():
        (tmp / FILES).write_text(json.dumps(_listing(tmp), indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    torch.distributed.barrier()
    return final


def load(path: Path, model, optimizer=None, scheduler=None) -> int:
    """Loads the model (and, when given, optimizer and scheduler state); returns the step."""
    verify(path)
    common = dist_checkpointing.load_common_state_dict(str(path))
    optimizer = optimizer if common["step"] > 0 else None
    msd = unwrap(model).sharded_state_dict()
    state = {"model": msd}
    if optimizer is not None:
        state["optimizer"] = optimizer.sharded_state_dict(msd, is_loading=True)
    loaded = dist_checkpointing.load(state, str(path))
    unwrap(model).load_state_dict(loaded["model"])
    if optimizer is not None:
        optimizer.load_state_dict(loaded["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(common["scheduler"])
        torch.set_rng_state(common["rng"]["cpu"])
        if common["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(common["rng"]["cuda"])
    return int(common["step"])

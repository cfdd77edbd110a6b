"""Reading the Megatron-Core checkpoints `xcult train` writes (`<run>/iter_<N>/` beside the
run's job.json): what export and eval both load."""

from __future__ import annotations

import json
from pathlib import Path

from xcult.errors import InputError, MissingPathError


def run_of(checkpoint: Path) -> dict:
    """The job of the run a checkpoint (<run>/iter_N) belongs to."""
    job = checkpoint.resolve().parent / "job.json"
    if not (checkpoint / "metadata.json").is_file() or not job.is_file():
        raise MissingPathError(f"{checkpoint} is not an iter_<N> checkpoint of an xcult run (no metadata.json or ../job.json)", str(checkpoint))
    return json.loads(job.read_text())


def load_megatron(checkpoint: Path):
    """(GPTModel on CPU in fp32 with the checkpoint's weights, job)."""
    from training import checkpoint as ckpt
    from training.model import build_model
    from training.runtime import init_single_process

    job = run_of(checkpoint)
    init_single_process()
    model = build_model(job["arch"], job["seq_length"], bf16=False, use_te=False)
    try:
        ckpt.load(checkpoint, model)
    except ckpt.DamagedCheckpoint as e:
        raise InputError(str(e), str(e.path)) from None
    return model.eval(), job

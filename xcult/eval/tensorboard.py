"""Eval's curves beside training's: accuracy, option margin and swapped-community control
accuracy per culture and question language at every checkpoint step, as TensorBoard
events in each continued-pretraining run's folder (`Layout.tensorboard`)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from xcult.layout import Layout

SUFFIX = ".xcult-eval"  # eval's own event files, replaced whole at every eval


def write_curves(acc: pl.DataFrame, run_dirs: dict[str, Path]) -> list[Path]:
    """One event file per setting's run directory (`run_dirs`: setting -> directory) that
    exists and is writable; returns the TensorBoard folders written. The previous eval's
    file is removed first, so a rescored checkpoint appears once."""
    from torch.utils.tensorboard import SummaryWriter

    written = []
    for (setting,), rows in acc.group_by("setting"):
        run = run_dirs.get(setting)
        if run is None or not run.is_dir() or not os.access(run, os.W_OK):
            continue
        folder = Layout.tensorboard(run)
        for old in folder.glob(f"*{SUFFIX}"):
            old.unlink()
        with SummaryWriter(str(folder), filename_suffix=SUFFIX) as w:
            for r in rows.sort("step").iter_rows(named=True):
                for metric in ("accuracy", "margin", "control_accuracy"):
                    if r.get(metric) is not None:
                        w.add_scalar(f"eval/{r['culture']}/{metric}_{r['lang']}", r[metric], r["step"])
        written.append(folder)
    return written

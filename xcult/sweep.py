"""`xcult sweep`: many worlds or seeds from one base config, each an ordinary `xcult run`
in its own directory, then one table of transfer gaps across them.

    xcult sweep configs/demo.toml --set train.ct.steps=1500 \
        --grid synth.word_order='"svo";"sov"' --seeds 1,2,3

`--set KEY=VALUE` applies to every run, `--grid KEY=V1;V2;...` multiplies the runs; values
are TOML (`4`, `"sov"`, `[0, 1]`), a bare word is a string. Runs are
`<out>/<label>/` (label from the grid values and the seed) with their own config.toml; a
finished run is skipped by `xcult run` itself, so a killed sweep resumes where it
stopped. Up to `jobs` runs go side by side (default: cores / train.threads).
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl

from xcult import layout
from xcult.config import from_dict, load_config
from xcult.errors import ConfigError
from xcult.io import ensure_writable, write_parquet_atomic, write_text_atomic


@dataclass(frozen=True)
class SweepRun:
    label: str
    seed: int
    overrides: dict[str, Any]
    config: Path  # the run's own config file

    @property
    def out_dir(self) -> Path:
        return self.config.parent


def parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", key.strip()):
        raise ConfigError(f"{option} {text!r}: expected KEY=VALUE with a dotted KEY such as synth.word_order", option)
    return key.strip(), value.strip()


def set_key(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {p} is not a table", dotted)
    node[last] = value


def _point(overrides: dict[str, Any]) -> str:
    """A grid point's label: its override values."""
    return re.sub(r"[^\w=.,-]+", "-", "_".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items()))


def _label(overrides: dict[str, Any], seed: int) -> str:
    return "_".join(x for x in (_point(overrides), f"seed={seed}") if x)


def plan(base: Path, sets: list[str], grids: list[str], seeds: list[int], out: Path) -> list[SweepRun]:
    """Writes one config per run (base + --set + one grid point + seed) and validates each."""
    import tomli_w

    try:
        raw = tomllib.loads(base.read_text(encoding="utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{base}: {e}", str(base)) from None
    fixed = dict(parse_assignment(s, "--set") for s in sets)
    axes = []
    for g in grids:
        key, values = parse_assignment(g, "--grid")
        axes.append([(key, v) for v in values.split(";")])
    runs = []
    for point in itertools.product(*axes) if axes else [()]:
        varied = {k: parse_value(v) for k, v in point}
        for seed in seeds:
            cfg = copy.deepcopy(raw)
            for k, v in {**{k: parse_value(v) for k, v in fixed.items()}, **varied}.items():
                set_key(cfg, k, v)
            label = _label(varied, seed)
            run_dir = out / label
            cfg.setdefault("experiment", {})
            cfg["experiment"].update(seed=seed, out_dir=str(run_dir), name=f"{cfg['experiment'].get('name', 'run')}-{label}")
            from_dict(cfg, f"{base} [{label}]")  # fails here, before anything runs
            ensure_writable(run_dir)
            path = run_dir / "config.toml"
            text = tomli_w.dumps(cfg)
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                write_text_atomic(path, text)
            runs.append(SweepRun(label, seed, varied, path))
    return runs


def default_jobs(base_threads: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, base_threads))


def execute(runs: list[SweepRun], jobs: int, echo: Callable[[str], None] = print) -> dict[str, int]:
    """Runs `xcult run` for each, `jobs` at a time; returns each label's exit code."""
    pending, active, codes = list(runs), {}, {}
    while pending or active:
        while pending and len(active) < jobs:
            r = pending.pop(0)
            log = open(r.out_dir / "run.log", "a")
            cmd = [sys.executable, "-m", "xcult.cli", "run", str(r.config), "--no-progress"]
            active[r.label] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log, time.perf_counter())
            echo(f"sweep: started {r.label} (log {r.out_dir / 'run.log'})")
        for label, (proc, log, t0) in list(active.items()):
            if proc.poll() is not None:
                log.close()
                codes[label] = proc.returncode
                state = "done" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                echo(f"sweep: {label} {state} in {time.perf_counter() - t0:.0f} s")
                del active[label]
        time.sleep(0.5)
    return codes


def collect(runs: list[SweepRun], out: Path) -> pl.DataFrame:
    """Every run's final-checkpoint transfer table, with the run's label, seed and
    overrides as columns; written to <out>/summary.parquet."""
    frames = []
    for r in runs:
        table = layout.of(load_config(r.config)).eval_table("main_table")
        if not table.is_file():
            continue
        t = pl.read_parquet(table).with_columns(run=pl.lit(r.label), seed=pl.lit(r.seed))
        frames.append(t.with_columns(**{k: pl.lit(str(v)) for k, v in r.overrides.items()}))
    if not frames:
        return pl.DataFrame()
    summary = pl.concat(frames, how="diagonal")
    write_parquet_atomic(out / "summary.parquet", summary)
    return summary


def pool_seeds(runs: list[SweepRun], out: Path, n_boot: int = 10_000) -> pl.DataFrame:
    """Per grid point (the runs that differ only in seed), each culture x direction's
    items of every finished seed at that run's final checkpoint, paired within a seed:
    the several-seed gap a single seed's CI cannot give. Items of different seeds count
    as independent (each seed draws its own world and model); written to
    <out>/pooled.parquet."""
    from xcult.eval.transfer import final_pairs
    from xcult.stats import mcnemar_exact, paired_bootstrap_ci

    groups: dict[str, list[SweepRun]] = {}
    for r in runs:
        groups.setdefault(_point(r.overrides), []).append(r)
    rows = []
    for point, members in groups.items():
        cells: dict[tuple[str, str], list[tuple[int, Any, Any]]] = {}
        for r in members:
            path = layout.of(load_config(r.config)).eval_table("predictions")
            if path.is_file():
                for key, (a, b) in final_pairs(pl.read_parquet(path)).items():
                    cells.setdefault(key, []).append((r.seed, a, b))
        for (culture, direction), parts in sorted(cells.items()):
            a = np.concatenate([x for _, x, _ in parts])
            b = np.concatenate([y for _, _, y in parts])
            lo, hi = paired_bootstrap_ci(a, b, n_boot)
            rows.append(
                {"point": point or "base", "culture": culture, "direction": direction, "seeds": ",".join(str(s) for s, _, _ in parts),
                 "n": len(a), "acc_with": float(a.mean()), "acc_without": float(b.mean()), "gap": float(a.mean() - b.mean()),
                 "ci_low": lo, "ci_high": hi, "p_mcnemar": mcnemar_exact(a, b)}
            )
    pooled = pl.DataFrame(rows)
    if not pooled.is_empty():
        write_parquet_atomic(out / "pooled.parquet", pooled)
    return pooled

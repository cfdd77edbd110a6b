"""Same seed, same bytes; a killed run resumes to the same bytes; idempotent reruns."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import write_config
from xcult.config import load_config
from xcult.corpus.sample import write_sample
from xcult.corpus.stage import run_prep

OUTPUT_SUFFIXES = (".bin", ".idx", ".parquet")


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.suffix in OUTPUT_SUFFIXES
    }


def test_same_seed_same_bytes_other_seed_other_order(tmp_path, sample_inputs, built):
    cfg0, _ = built
    cfg = load_config(write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run"))
    run_prep(cfg, progress=False)
    a = digests(cfg0.out_dir / "prep")
    assert a == digests(cfg.out_dir / "prep") and len(a) == 20
    other = load_config(write_config(tmp_path / "o.toml", sample_inputs, tmp_path / "other", seed=7))
    run_prep(other, progress=False)
    b = digests(other.out_dir / "prep")
    assert all(a[k] != b[k] for k in a if k.endswith(".bin"))


def test_second_run_skips_and_force_rebuilds(built):
    cfg, _ = built
    en_bin = cfg.out_dir / "prep" / "en" / "en.bin"
    before = en_bin.stat().st_mtime_ns
    run_prep(cfg, progress=False)
    assert en_bin.stat().st_mtime_ns == before
    from xcult.corpus.prep import build_unit

    stats = build_unit(cfg, "en", force=True, progress=False)
    assert not stats.get("skipped") and en_bin.stat().st_mtime_ns != before


def test_killed_run_resumes_to_identical_bytes(tmp_path):
    inputs = tmp_path / "inputs"
    write_sample(inputs, seed=3, scale=20)
    clean = write_config(tmp_path / "clean.toml", inputs, tmp_path / "clean", langs=("zh",))
    run_prep(load_config(clean), progress=False)
    cfg = write_config(tmp_path / "killed.toml", inputs, tmp_path / "killed", langs=("zh",))
    cmd = [sys.executable, "-m", "xcult.cli", "prep", str(cfg), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tmp_unit = tmp_path / "killed" / "prep" / ".en.tmp"
    deadline = time.time() + 120
    while not (tmp_unit / ".work").exists() and time.time() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert tmp_unit.exists(), "the run was killed while building en"
    assert not (tmp_path / "killed" / "prep" / "en").exists(), "no half-built unit under its final name"
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert digests(tmp_path / "clean" / "prep") == digests(tmp_path / "killed" / "prep")
    assert not tmp_unit.exists()

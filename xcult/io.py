"""Atomic writes: a file with its final name is always complete (temp file + rename)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from xcult.errors import UnwritablePathError


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = _tmp(path)
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: Path, text: str) -> None:
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_parquet_atomic(path: Path, frame) -> None:
    """Writes a polars DataFrame."""
    tmp = _tmp(path)
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def replace_dir(tmp: Path, final: Path) -> None:
    """Puts the directory built in `tmp` where `final` was (an old one is removed first):
    a directory with its final name is always complete."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)


def ensure_writable(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".probe{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UnwritablePathError(f"{d}: output directory is not writable: {e.strerror}", str(d)) from None

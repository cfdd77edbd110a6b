"""Completion records: what an output was built from, so a rerun can tell current output
from stale output instead of trusting that a file exists.

A record (`completion.json` beside the output) holds the stage's resolved settings (a
JSON-able dict: the config section, the job) and the identity of every input file
(path, size, mtime, SHA-256). `status` compares a new build's record with the stored
one: `current` (same settings; every file the same size and mtime, or rehashed to the
same content), `stale` with a one-line reason naming the first setting or file that
changed, or `missing`. Hashing happens only when size or mtime moved, as make and git do.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xcult.errors import MissingPathError
from xcult.io import write_json_atomic

RECORD = "completion.json"


@dataclass(frozen=True)
class Status:
    state: Literal["current", "stale", "missing"]
    reason: str = ""

    def __bool__(self) -> bool:  # truthy when the output can be reused
        return self.state == "current"


@functools.lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    from xcult import _core

    return _core.hash_files([path])[0]


def _stat(path: Path):
    try:
        return path.stat()
    except FileNotFoundError:
        raise MissingPathError(f"input file {path} does not exist", str(path)) from None


def sha256(path: Path) -> str:
    """The file's SHA-256, computed once per process for a given size and mtime (a
    checkpoint scored for several cultures, or inputs the manifest lists again)."""
    st = _stat(path)
    return _sha256(str(path), st.st_size, st.st_mtime_ns)


def file_identity(path: Path) -> dict[str, Any]:
    st = _stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256(path)}


def record(settings: dict[str, Any], inputs: list[Path]) -> dict[str, Any]:
    """A new record: the settings as given, every input file's identity."""
    return {"settings": settings, "inputs": {str(p): file_identity(Path(p)) for p in sorted({str(p) for p in inputs})}}


def _first_difference(old: Any, new: Any, key: str = "") -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            d = _first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else k)
            if d is not None:
                return d
        return None
    return None if old == new else f"{key} {json.dumps(old)} -> {json.dumps(new)}"


def status(output: Path, settings: dict[str, Any], inputs: list[Path], record_path: Path | None = None) -> Status:
    """Is `output` (a directory holding RECORD, or a file whose record is `record_path`)
    current for these settings and input files? Unchanged files are not rehashed."""
    path = record_path or output / RECORD
    if not output.exists():
        return Status("missing")
    if not path.is_file():
        return Status("stale", "no completion record (built by an older xcult)")
    stored = json.loads(path.read_text(encoding="utf-8"))
    diff = _first_difference(stored.get("settings"), json.loads(json.dumps(settings)))
    if diff is not None:
        return Status("stale", f"setting {diff}")
    old_inputs: dict[str, dict] = stored.get("inputs", {})
    names = sorted({str(p) for p in inputs})
    if sorted(old_inputs) != names:
        added = sorted(set(names) - set(old_inputs))
        removed = sorted(set(old_inputs) - set(names))
        return Status("stale", f"inputs changed (added {added or 'none'}, removed {removed or 'none'})")
    for name in names:
        p, old = Path(name), old_inputs[name]
        if not p.is_file():
            return Status("stale", f"input {name} is gone")
        st = p.stat()
        if st.st_size == old["size"] and st.st_mtime_ns == old["mtime_ns"]:
            continue
        now = file_identity(p)
        if now["sha256"] != old["sha256"]:
            return Status("stale", f"input {name} changed (sha256 {old['sha256'][:12]} -> {now['sha256'][:12]})")
    return Status("current")


def write(output: Path, rec: dict[str, Any], record_path: Path | None = None) -> None:
    write_json_atomic(record_path or output / RECORD, rec)


def tree_files(root: Path) -> list[Path]:
    """Every file under a directory (a checkpoint's identity is all of its files)."""
    return sorted(p for p in root.rglob("*") if p.is_file())

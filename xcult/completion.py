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

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from xcult.io import write_json_atomic

RECORD = "completion.json"


@dataclass(frozen=True)
class Status:
    state: Literal["current", "stale", "missing"]
    reason: str = ""

    def __bool__(self) -> bool:  # truthy when the output can be reused
        return self.state == "current"


def file_identity(path: Path, sha256: str | None = None) -> dict[str, Any]:
    from xcult import _core

    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256 or _core.hash_files([str(path)])[0]}


def record(settings: dict[str, Any], inputs: list[Path]) -> dict[str, Any]:
    """A new record: the settings as given, every input file's identity (hashed now)."""
    from xcult import _core

    paths = sorted({str(p) for p in inputs})
    hashes = _core.hash_files(paths) if paths else []
    return {"settings": settings, "inputs": {p: file_identity(Path(p), h) for p, h in zip(paths, hashes, strict=True)}}


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

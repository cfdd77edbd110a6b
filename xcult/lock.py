"""One writer per run directory: an OS file lock (`<out_dir>/.xcult.lock`) that every
command writing a run holds while it works. The kernel releases it when the process
dies, however it dies, so a killed run never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from xcult.errors import RunLockedError
from xcult.io import ensure_writable

LOCK = ".xcult.lock"


@contextmanager
def hold(root: Path, command: str) -> Iterator[None]:
    """Holds the run directory's lock for `command` (e.g. "xcult prep"), or raises
    RunLockedError naming the command and pid that hold it."""
    ensure_writable(root)
    f = open(root / LOCK, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "xcult process"
            raise RunLockedError(
                f"another {holder} is writing {root}; wait for it to finish (or stop it): its lock goes when it exits",
                str(root),
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{command} (pid {os.getpid()})")
        f.flush()
        yield
    finally:
        f.close()  # closing the descriptor releases the lock

"""Processes that die with their parent. A training worker (under torchrun), torchrun
itself (under `xcult train`) and datatrove's manager process (under `xcult prep`) ask the
kernel for SIGKILL when their parent dies, so killing xcult by any means leaves no
process of it running on.
Linux only (prctl); elsewhere a no-op. Imports nothing heavy: the launcher runs it in
the child between fork and exec."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")

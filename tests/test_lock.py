"""One writer per run directory: a second command on a run another process is writing
stops with a clear error, and the lock goes with the process that held it, even when
that process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from click.testing import CliRunner

from xcult.cli import main

CONFIG = """
[experiment]
name = "locked"
out_dir = "{out}"

[synth]
tiers = {{ low = {{ communities = 2, frequent_in = "native" }} }}
attributes = ["food", "festival"]
frequencies = [1, 2]
bridge_communities = 2
filler_documents_en = 10
filler_documents_native = 10
parallel_pairs = 20
heldout_pairs = 4
"""

HOLDER = """
import sys, time
from pathlib import Path
from xcult.lock import hold
with hold(Path(sys.argv[1]), "xcult prep"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_second_writer_is_refused_until_the_holder_dies(tmp_path):
    out = tmp_path / "run"
    config = tmp_path / "c.toml"
    config.write_text(CONFIG.format(out=out))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = CliRunner().invoke(main, ["synth", str(config)])
        assert r.exit_code == 2
        assert f"another xcult prep (pid {holder.pid}) is writing {out}" in r.output
        assert not (out / "synth").exists()  # nothing was written
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no clean-up code runs: the kernel drops the lock
        holder.wait()
    r = CliRunner().invoke(main, ["synth", str(config)])
    assert r.exit_code == 0, r.output
    assert (out / "synth" / "stats.json").is_file()
    r = CliRunner().invoke(main, ["synth", str(config)])  # the lock is released when a command ends
    assert r.exit_code == 0 and "kept" in r.output

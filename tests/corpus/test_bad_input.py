"""Bad input: a clear error naming the file and line, or a counted, recorded skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_config
from xcult import layout
from xcult.config import load_config
from xcult.corpus.prep import build_unit
from xcult.errors import ConfigError, InputError, MissingPathError, PathError, TokenizerError


def english_only(tmp_path: Path, lines: list[bytes], on_error: str = "error", extra: str = "") -> object:
    src = tmp_path / "en.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(
        f'[experiment]\nname = "t"\nout_dir = "{tmp_path / "run"}"\n{extra}\n'
        f'[prep]\non_error = "{on_error}"\n[prep.english]\npaths = ["{src}"]\n',
        encoding="utf-8",
    )
    return load_config(cfg_path)


GOOD = json.dumps({"text": "A good English document."}).encode()
BAD = {
    "invalid UTF-8": b'{"text": "broken \xff\xfe bytes"}',
    "malformed JSON": b'{"text": "no closing brace"',
    "missing text field": b'{"body": "wrong field"}',
}


@pytest.mark.parametrize("reason", list(BAD))
def test_bad_line_is_an_error_naming_file_and_line(tmp_path, reason):
    cfg = english_only(tmp_path, [GOOD, GOOD, BAD[reason], GOOD])
    with pytest.raises(InputError) as e:
        build_unit(cfg, "en", progress=False)
    assert e.value.line == 3 and e.value.path.endswith("en.jsonl")
    assert reason in str(e.value) and "en.jsonl:3" in str(e.value)
    assert not (layout.of(cfg).prep / "en").exists()


def test_skip_policy_counts_and_records_every_skip(tmp_path):
    cfg = english_only(tmp_path, [GOOD, *BAD.values(), GOOD], on_error="skip")
    stats = build_unit(cfg, "en", progress=False)
    skipped = stats["inputs"]["documents"]["skipped"]
    assert skipped == {"invalid_utf_8": 1, "malformed_json": 1, "missing_text_field": 1}
    assert stats["outputs"][0]["documents"] == 2
    records = (layout.of(cfg).prep / "en" / "skipped.jsonl").read_text().splitlines()
    assert [json.loads(r)["error"].split(": ")[0].rsplit(":", 1)[1] for r in records] == ["2", "3", "4"]


def test_empty_input(tmp_path):
    cfg = english_only(tmp_path, [])
    (tmp_path / "en.jsonl").write_bytes(b"")
    with pytest.raises(InputError, match="empty input"):
        build_unit(cfg, "en", progress=False)


def test_unequal_parallel_files_name_both_files_and_counts(tmp_path, sample_inputs):
    short = tmp_path / "short.bo"
    lines = (sample_inputs / "bo_pairs.bo").read_text(encoding="utf-8").splitlines()
    short.write_text("\n".join(lines[:-5]) + "\n", encoding="utf-8")
    cfg_path = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", langs=("bo",))
    cfg_path.write_text(cfg_path.read_text().replace(str(sample_inputs / "bo_pairs.bo"), str(short)))
    cfg = load_config(cfg_path)
    with pytest.raises(InputError) as e:
        build_unit(cfg, "bo", progress=False)
    msg = str(e.value)
    assert f"bo_pairs.en has {len(lines)} lines" in msg and f"short.bo has {len(lines) - 5} lines" in msg


def test_missing_tokenizer_file(tmp_path):
    cfg = english_only(tmp_path, [GOOD], extra=f'[tokenizer]\nname = "{tmp_path / "nope.json"}"\n')
    with pytest.raises(TokenizerError, match="nope.json"):
        build_unit(cfg, "en", progress=False)


def test_missing_input_file(tmp_path):
    cfg = english_only(tmp_path, [GOOD])
    (tmp_path / "en.jsonl").unlink()
    with pytest.raises(MissingPathError, match="en.jsonl"):
        build_unit(cfg, "en", progress=False)


def test_unwritable_output_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    cfg = english_only(tmp_path, [GOOD])
    import dataclasses

    cfg = dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, out_dir=str(blocker / "run")))
    with pytest.raises(PathError, match="not writable"):
        build_unit(cfg, "en", progress=False)


def test_shortage_error_names_the_budget_key(tmp_path, sample_inputs):
    cfg_path = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", langs=("zh",))
    cfg_path.write_text(cfg_path.read_text().replace("budget_tokens = 40_000", "budget_tokens = 900_000_000"))
    with pytest.raises(ConfigError) as e:
        build_unit(load_config(cfg_path), "zh", progress=False)
    assert e.value.key == "prep.languages.zh.budget_tokens"


def test_input_of_blank_lines_only_names_the_file_and_the_counts(tmp_path):
    cfg = english_only(tmp_path, [b"", b"   ", b""])
    with pytest.raises(InputError) as e:
        build_unit(cfg, "en", progress=False)
    assert e.value.path.endswith("en.jsonl")
    assert "no document survived: 3 records read in" in str(e.value) and "3 blank, 0 dropped by the filter, 0 skipped" in str(e.value)


def test_a_prep_error_is_one_clean_line_and_the_log_path(tmp_path):
    """datatrove's step listing and traceback go to its log file, not the terminal;
    `xcult --debug` shows them."""
    import subprocess
    import sys

    cfg = english_only(tmp_path, [GOOD, BAD["malformed JSON"]])
    args = [sys.executable, "-m", "xcult.cli", "prep", str(tmp_path / "c.toml"), "--no-progress"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 2
    logs = layout.of(cfg).prep_logs
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == f"prep: datatrove's log of this run: {logs}/logs/"
    assert lines[1].startswith(f"error: {tmp_path / 'en.jsonl'}:2: malformed JSON")
    assert "Traceback" in (logs / "logs" / "task_00000.log").read_text()
    debug = subprocess.run([args[0], "-m", "xcult.cli", "--debug", *args[3:]], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "PIPELINE" in debug.stderr


@pytest.fixture
def small_fs(tmp_path):
    """A real 512 KiB filesystem (tmpfs), unmounted afterwards; needs root to mount."""
    import subprocess

    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()})")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def _english_documents(tmp_path: Path, n: int) -> Path:
    """n JSON-lines documents of 40 words each."""
    src = tmp_path / "big.jsonl"
    words = "river mountain village market road house field tree stone rain snow wind".split()
    with open(src, "w") as f:
        for i in range(n):
            f.write(json.dumps({"text": " ".join(words[(i * 7 + k) % len(words)] for k in range(40))}) + "\n")
    return src


def _prep_cli(tmp_path: Path, out_dir: Path, tokenizer: Path | None = None):
    import subprocess
    import sys

    src = _english_documents(tmp_path, 20_000)
    config = tmp_path / "c.toml"
    tok = f'[tokenizer]\nname = "{tokenizer}"\n' if tokenizer else ""
    config.write_text(f'[experiment]\nname = "t"\nout_dir = "{out_dir}"\n{tok}[prep.english]\npaths = ["{src}"]\n')
    return subprocess.run([sys.executable, "-m", "xcult.cli", "prep", str(config), "--no-progress"], capture_output=True, text=True)


@pytest.mark.parametrize("where", ["engine output", "tokenizer cache"])
def test_a_full_disk_is_one_clean_error_and_leaves_no_temp_files(tmp_path, small_fs, qwen_tokenizer_json, where):
    """The engine's outputs (the tokenizer outside the small disk) or the tokenizer cache
    (7 MB, on it) overflow a 512 KiB disk: one `error:` line, exit 2, nothing left over."""
    r = _prep_cli(tmp_path, small_fs / "run", qwen_tokenizer_json if where == "engine output" else None)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("error: ") and "No space left on device" in lines[-1], r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "Loguru" not in r.stderr
    if where == "tokenizer cache":
        assert "qwen2.5-tokenizer.json: cannot write the tokenizer" in lines[-1]
    left = [p.name for p in (small_fs / "run").rglob("*") if p.is_file() and "datatrove" not in p.parts]
    assert left == [".xcult.lock"], left  # the unit's temporary directory and partial files are gone


def test_a_read_only_output_directory_is_one_clean_error(tmp_path, small_fs):
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    r = _prep_cli(tmp_path, small_fs / "run")
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {small_fs / 'run'}: output directory is not writable: Read-only file system"


def test_a_killed_prep_leaves_no_process_behind(tmp_path, qwen_tokenizer_json):
    """SIGKILL to `xcult prep` alone: datatrove's manager process goes with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    src = _english_documents(tmp_path, 400_000)
    config = tmp_path / "c.toml"
    config.write_text(f'[experiment]\nname = "t"\nout_dir = "{tmp_path / "run"}"\n[tokenizer]\nname = "{qwen_tokenizer_json}"\n'
                      f'[prep.english]\npaths = ["{src}"]\n')
    proc = subprocess.Popen([sys.executable, "-m", "xcult.cli", "prep", str(config), "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    children: list[str] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "no child process appeared (the manager starts before the unit is built)"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2)
    alive = [c for c in children if os.path.exists(f"/proc/{c}") and "zombie" not in open(f"/proc/{c}/status").read()]
    try:
        assert alive == []
    finally:
        for c in alive:
            os.kill(int(c), signal.SIGKILL)

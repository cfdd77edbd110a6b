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

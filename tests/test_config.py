"""Config loading: unknown keys and bad values name their key; jobs survive Rust."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from xcult import _core
from xcult.config import load_config
from xcult.corpus import jobs
from xcult.density.count import datastore_job
from xcult.density.index import corpora as index_corpora
from xcult.density.index import corpus_job
from xcult.errors import ConfigError


@pytest.mark.parametrize(
    "patch, key",
    [
        (("min_chars = 20", "min_chars = 20\nmin_char = 3"), "prep.english.min_char"),
        (("min_chars = 20", 'min_chars = "twenty"'), "prep.english.min_chars"),
        (("min_chars = 20", "min_chars = -5"), "prep.english.min_chars"),
        (('on_error = "skip"', 'on_error = "ignore"'), "prep.on_error"),
        (("budget_tokens = 40_000", "budget_tokens = -5"), "prep.languages.zh.budget_tokens"),
        (("budget_tokens = 40_000", 'budget_tokens = 40_000\ntemplate = "English: {en}"'), "prep.languages.zh.template"),
    ],
)
def test_bad_config_names_the_key(tmp_path, sample_inputs, patch, key):
    p = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", langs=("zh",))
    p.write_text(p.read_text().replace(*patch, 1))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == key and key in str(e.value)


def test_unknown_language_needs_its_scripts(tmp_path, sample_inputs):
    p = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", langs=("zh",))
    p.write_text(p.read_text().replace("[prep.languages.zh]", "[prep.languages.ja]"))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == "prep.languages.ja.keep_scripts"


@pytest.mark.parametrize("name", ["small.toml", "paper.toml", "demo.toml"])
def test_shipped_configs_load_and_round_trip_through_rust(name):
    cfg = load_config(ROOT / "configs" / name)
    for unit in jobs.units(cfg):
        kind, job = jobs.job(cfg, unit, Path("/tok.json"), Path("/out"), progress=False)
        assert json.loads(_core.roundtrip_job(kind, json.dumps(job))) == job
    for corpus in index_corpora(cfg):
        job = corpus_job(cfg, corpus, Path("/index"), check=False)
        assert json.loads(_core.roundtrip_job("index", json.dumps(job))) == job
        job = datastore_job(cfg, corpus, Path("/count"), check=False)
        assert json.loads(_core.roundtrip_job("datastore", json.dumps(job))) == job


def test_paper_config_is_the_full_study():
    cfg = load_config(ROOT / "configs" / "paper.toml")
    assert set(cfg.prep.languages) == {"ko", "zh", "bo", "mn"}
    assert cfg.prep.english.budget_tokens == 5_000_000_000
    assert all(lc.budget_tokens == 1500 * 500_000 for lc in cfg.prep.languages.values())


def test_synth_world_files_are_the_defaults_of_the_tables_a_config_has(tmp_path):
    from xcult import layout
    from xcult.config import from_dict

    raw = {
        "experiment": {"name": "w", "out_dir": str(tmp_path / "w")},
        "synth": {"language": "ko"},
        "prep": {"english": {}, "languages": {"ko": {"pair_paths": ["mine.tsv"]}}},
        "eval": {"cultures": ["low"]},
    }
    cfg = from_dict(raw)
    files = layout.of(cfg).synth_files
    assert files.root == tmp_path / "w" / "synth"
    assert cfg.tokenizer.name == str(files.tokenizer) and cfg.prep.english.paths == [str(files.english)]
    assert cfg.prep.languages["ko"].mono_paths == [str(files.mono("ko"))] and files.mono("ko").name == "ko_mono.jsonl"
    assert cfg.prep.languages["ko"].pair_paths == ["mine.tsv"]  # a key the config sets wins
    assert (cfg.eval.probes, cfg.eval.controls, cfg.eval.translation) == (str(files.probes), str(files.controls), str(files.translation))
    assert raw["prep"]["english"] == {}  # the caller's table is not modified
    synth_only = from_dict({"experiment": {"name": "s", "out_dir": str(tmp_path / "s")}, "synth": {}})
    assert synth_only.prep.english is None and not synth_only.prep.languages and synth_only.eval is None

"""`xcult synth`: determinism, planted frequencies, probes, script purity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import regex

from xcult.config import load_config
from xcult.probes import load_culture
from xcult.synth.write import run_synth, synth_dir

SMALL = """
[experiment]
name = "w"
out_dir = "{out}"
seed = {seed}

[synth]
language = "{lang}"
tiers = {{ low = {{ communities = 2, en = "rare", native = "frequent" }}, english = {{ communities = 2, en = "frequent", native = "rare" }} }}
attributes = ["food", "festival", "dwelling"]
frequencies = [1, 3, 5]
filler_documents_en = 50
filler_documents_native = 30
parallel_pairs = 80
vocab_size = 400
parallel_tiers = ["english"]
"""


def world(tmp: Path, seed: int = 7, lang: str = "bo", name: str = "w"):
    p = tmp / f"{name}.toml"
    p.write_text(SMALL.format(out=tmp / name, seed=seed, lang=lang))
    cfg = load_config(p)
    return cfg, run_synth(cfg)


def digest(d: Path) -> dict[str, str]:
    skip = {"stats.json", "config.json"}  # hold timings and paths
    return {str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.rglob("*")) if f.is_file() and f.name not in skip}


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    a, _ = world(tmp_path, 7, name="a")
    b, _ = world(tmp_path, 7, name="b")
    c, _ = world(tmp_path, 8, name="c")
    da, db, dc = digest(synth_dir(a)), digest(synth_dir(b)), digest(synth_dir(c))
    assert da == db and len(da) >= 9
    assert da["en.jsonl"] != dc["en.jsonl"] and da["planted.parquet"] != dc["planted.parquet"]


def test_planted_counts_are_the_documents_holding_each_statement(tmp_path):
    cfg, stats = world(tmp_path)
    d = synth_dir(cfg)
    planted = pl.read_parquet(d / "planted.parquet")
    en = [json.loads(line)["text"] for line in open(d / "en.jsonl", encoding="utf-8")]
    bo = [json.loads(line)["text"] for line in open(d / "bo_mono.jsonl", encoding="utf-8")]
    pairs = (d / "bo_en.tsv").read_text(encoding="utf-8")
    assert stats["documents_en"] == len(en) == 50 + planted["planted_en"].sum()
    for tier in ("low", "english"):
        culture = load_culture(str(d / "probes"), tier, "bo")
        rows = planted.filter(pl.col("culture") == tier).sort("item")
        assert culture.index == rows["item"].to_list() and not culture.problems
        for r, en_item, bo_item in zip(rows.iter_rows(named=True), culture.items("en"), culture.items("bo")):
            assert len(en_item.options) == 4 and en_item.answer == r["value"]
            en_s, bo_s = en_item.statement(), bo_item.statement()
            assert sum(en_s in doc for doc in en) == r["planted_en"]
            assert sum(bo_s in doc for doc in bo) == r["planted_native"]
            assert (f"{en_s}\t{bo_s}" in pairs) == (tier == "english") == bool(r["planted_pairs"])
            if tier == "low":
                assert en_s not in pairs and bo_s not in pairs
            if tier == "low":
                assert r["planted_native"] in (1, 3, 5) and r["planted_en"] in (0, 1)
            else:
                assert r["planted_en"] in (1, 3, 5) and r["planted_native"] in (0, 1)


@pytest.mark.parametrize("lang,script", [("bo", "Tibetan"), ("ko", "Hangul")])
def test_native_text_is_one_script_and_tokenizer_has_eod(tmp_path, lang, script):
    cfg, _ = world(tmp_path, lang=lang)
    d = synth_dir(cfg)
    native = (d / f"{lang}_mono.jsonl").read_text(encoding="utf-8")
    letters = regex.findall(r"\p{L}", "".join(json.loads(line)["text"] for line in native.splitlines()))
    assert letters and all(regex.match(rf"\p{{Script={script}}}", ch) for ch in letters)
    en = (d / "en.jsonl").read_text(encoding="utf-8")
    assert not regex.search(r"[^\p{Latin}\p{Common}]", "".join(json.loads(line)["text"] for line in en.splitlines()))
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    assert tok.token_to_id("<|endoftext|>") == 0 and tok.get_vocab_size() <= 400


def test_complete_world_is_kept_and_bad_config_named(tmp_path):
    cfg, first = world(tmp_path)
    assert run_synth(cfg)["skipped"] is True
    p = tmp_path / "bad.toml"
    p.write_text(SMALL.format(out=tmp_path / "x", seed=1, lang="bo").replace('attributes = ["food", "festival", "dwelling"]', 'attributes = ["food", "weather"]'))
    from xcult.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == "synth.attributes"

"""`xcult synth`: determinism, planted frequencies, probes, script purity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import regex

from xcult import layout
from xcult.config import load_config
from xcult.probes import load_culture
from xcult.synth.write import run_synth

SMALL = """
[experiment]
name = "w"
out_dir = "{out}"
seed = {seed}

[synth]
language = "{lang}"
tiers = {{ low = {{ communities = 2, frequent_in = "native" }}, english = {{ communities = 2, frequent_in = "en" }} }}
attributes = ["food", "festival", "dwelling"]
frequencies = [1, 3, 5]
rare = [0, 1]
templates = 1
bridge_communities = 3
bridge_repeats = 2
bridge_mentions = 2
heldout_pairs = 20
{extra}
filler_documents_en = 50
filler_documents_native = 30
parallel_pairs = 80
vocab_size = {vocab}
parallel_tiers = ["english"]
"""


def world(tmp: Path, seed: int = 7, lang: str = "bo", name: str = "w", extra: str = "", vocab: int = 400):
    p = tmp / f"{name}.toml"
    p.write_text(SMALL.format(out=tmp / name, seed=seed, lang=lang, extra=extra, vocab=vocab))
    cfg = load_config(p)
    return cfg, run_synth(cfg)


def digest(d: Path) -> dict[str, str]:
    skip = {"stats.json", "config.json"}  # hold timings and paths
    return {str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.rglob("*")) if f.is_file() and f.name not in skip}


def test_same_seed_same_world_other_seed_other_world(tmp_path):
    a, _ = world(tmp_path, 7, name="a")
    b, _ = world(tmp_path, 7, name="b")
    c, _ = world(tmp_path, 8, name="c")
    da, db, dc = digest(layout.of(a).synth), digest(layout.of(b).synth), digest(layout.of(c).synth)
    assert da == db and len(da) >= 9
    assert da["en.jsonl"] != dc["en.jsonl"] and da["planted.parquet"] != dc["planted.parquet"]


def test_planted_counts_are_the_documents_holding_each_statement(tmp_path):
    cfg, stats = world(tmp_path)
    d = layout.of(cfg).synth
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
    d = layout.of(cfg).synth
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
    p.write_text(SMALL.format(out=tmp_path / "x", seed=1, lang="bo", extra="", vocab=400).replace('attributes = ["food", "festival", "dwelling"]', 'attributes = ["food", "weather"]'))
    from xcult.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.key == "synth.attributes"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("order", ["svo", "sov"])
def test_word_order_switch_places_the_value(tmp_path, order):
    """svo: the native fact sentence is word-for-word English; sov: the value comes
    before the verb."""
    cfg, _ = world(tmp_path, extra=f'word_order = "{order}"')
    d = layout.of(cfg).synth
    w = json.loads((d / "world.json").read_text(encoding="utf-8"))
    lex = w["lexicon"]
    fact = next(f for f in w["facts"] if f["tier"] == "low" and f["attribute"] == "food")
    en_words = ["the", fact["community"], "people", "eat", fact["value"]]
    expected = en_words if order == "svo" else ["the", fact["community"], "people", fact["value"], "eat"]
    sentence = " ".join(lex[x] for x in expected) + " །"
    assert any(sentence in json.loads(line)["text"] for line in _lines(d / "bo_mono.jsonl"))
    other = en_words if order == "sov" else expected[:3] + [fact["value"], "eat"]
    assert not any(" ".join(lex[x] for x in other) + " །" in json.loads(line)["text"] for line in _lines(d / "bo_mono.jsonl"))


def test_word_level_tokenizer_gives_one_id_per_word_and_bpe_does_not(tmp_path):
    from tokenizers import Tokenizer

    cfg, _ = world(tmp_path, name="word")
    d = layout.of(cfg).synth
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    lex = json.loads((d / "world.json").read_text(encoding="utf-8"))["lexicon"]
    for en, xx in list(lex.items())[:50]:
        assert len(tok.encode(en).ids) == 1 and len(tok.encode(xx).ids) == 1
        assert tok.encode(xx).ids != tok.encode(en).ids
    line = _lines(d / "bo_mono.jsonl")[0]
    text = json.loads(line)["text"]
    assert len(tok.encode(text).ids) == len(text.split())  # words and the sentence mark
    assert tok.token_to_id("[UNK]") not in tok.encode(text).ids
    cfg, _ = world(tmp_path, name="bpe", extra='tokenization = "bpe"', vocab=300)
    tok = Tokenizer.from_file(str(layout.of(cfg).synth / "tokenizer.json"))
    lex = json.loads((layout.of(cfg).synth / "world.json").read_text(encoding="utf-8"))["lexicon"]
    assert sum(len(tok.encode(x).ids) for x in lex.values()) > 1.5 * len(lex)


def test_bridges_cover_every_relation_value_and_probed_name(tmp_path):
    cfg, stats = world(tmp_path, extra='shared_communities = 2')
    d = layout.of(cfg).synth
    w = json.loads((d / "world.json").read_text(encoding="utf-8"))
    pairs = _lines(d / "bo_en.tsv")[: stats["bridge_pairs"]]
    english = [p.split("\t")[0].split() for p in pairs]
    bridge_facts = [f for f in w["facts"] if f["tier"] == "bridge"]
    assert len(bridge_facts) == 3 * 3 and stats["bridge_pairs"] == 3 * 3 * 2 + (4 + 2) * 2 + 6
    for f in bridge_facts:  # each bridge fact in `bridge_repeats` pairs
        assert sum(f["community"] in e and f["value"] in e for e in english) >= 2
    for c in [f["community"] for f in w["facts"] if f["tier"] in ("low", "english", "shared")]:
        assert sum(c in e for e in english) >= 2
    for verb in ("eat", "celebrate", "live"):
        assert sum(verb in e for e in english) >= 3 * 2
    # shared communities' facts are in both monolingual corpora, never probed
    shared = [f for f in w["facts"] if f["tier"] == "shared"]
    en_docs = (d / "en.jsonl").read_text(encoding="utf-8")
    assert shared and all(f["community"] in en_docs for f in shared)
    for t in ("low", "english"):
        qs = [it["question"] for it in json.loads((d / "probes" / f"{t}-culture-cloze_en.json").read_text())]
        assert not any(f["community"] in q for f in shared for q in qs)


def test_heldout_pairs_and_swapped_controls(tmp_path):
    cfg, stats = world(tmp_path)
    d = layout.of(cfg).synth
    trained = {line.split("\t")[0] for line in _lines(d / "bo_en.tsv")}
    held = [json.loads(line) for line in _lines(d / "translation.jsonl")]
    assert len(held) == stats["heldout_pairs"] == 20 and {h["kind"] for h in held} == {"name", "value"}
    assert not any(h["en"] in trained for h in held)
    assert all(h["word"] in h["xx"].split() and h["en_word"] in h["en"].split() for h in held)
    w = json.loads((d / "world.json").read_text(encoding="utf-8"))
    truth = {(f["community"], f["attribute"]): f["value"] for f in w["facts"] if f["tier"] in ("low", "english")}
    for t in ("low", "english"):
        probes = json.loads((d / "probes" / f"{t}-culture-cloze_en.json").read_text())
        controls = json.loads((d / "controls" / f"{t}-culture-cloze_en.json").read_text())
        assert controls
        for c in controls:
            p = probes[c["item"]]
            assert c["options"] == p["options"] and c["answer"] == p["answer"] and c["question"] != p["question"]
            community = c["question"].split()[1]
            attribute = next(a for (cc, a), v in truth.items() if cc == p["question"].split()[1] and v == p["answer"])
            assert truth[(community, attribute)] not in c["options"]


def test_digit_anchors_share_community_names(tmp_path):
    cfg, _ = world(tmp_path, extra='anchors = "digits"')
    w = json.loads((layout.of(cfg).synth / "world.json").read_text(encoding="utf-8"))
    names = {f["community"] for f in w["facts"]}
    assert all(n.isdigit() and w["lexicon"][n] == n for n in names)


def test_changed_world_settings_rewrite_the_world(tmp_path):
    """A world is reused only for the same [synth] section and seed; else rewritten."""
    from xcult.synth.write import synth_status

    cfg, _ = world(tmp_path, name="a")
    assert synth_status(cfg).state == "current"
    path = tmp_path / "a.toml"
    path.write_text(path.read_text().replace("templates = 1", "templates = 2"))
    changed = load_config(path)
    assert synth_status(changed).reason == "setting synth.templates 1 -> 2"
    stats = run_synth(changed)
    assert not stats.get("skipped") and stats["rebuilt"].startswith("setting synth.templates")
    assert json.loads((layout.of(changed).synth / "config.json").read_text())["synth"]["templates"] == 2
    path.write_text(path.read_text().replace("seed = 7", "seed = 8"))
    assert synth_status(load_config(path)).reason == "setting seed 7 -> 8"

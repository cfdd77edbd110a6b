"""Code-switched bridges (`prep.languages.<l>.switch_rate`): on a synthetic world, the
bridged documents are the pairs with lexicon words switched at the rate, and nothing
else of the output changes."""

from __future__ import annotations

import hashlib
import polars as pl
import pytest

from xcult import layout
from xcult.config import load_config
from xcult.errors import ConfigError, InputError
from xcult.corpus.stage import run_prep
from xcult.synth.write import run_synth

CONFIG = """
[experiment]
name = "cs"
out_dir = "{out}"
seed = 11

[synth]
language = "bo"
tokenization = "word"
tiers = {{ low = {{ communities = 2, frequent_in = "native" }}, english = {{ communities = 2, frequent_in = "en" }} }}
attributes = ["food", "festival", "dwelling"]
frequencies = [2, 4]
bridge_communities = 3
filler_documents_en = 40
filler_documents_native = 30
parallel_pairs = 120

[prep.english]

[prep.languages.bo]
template = "{{en}} {{xx}}"
shortage = "shrink"
switch_rate = {rate}
"""


def build(tmp_path, name: str, rate: float):
    p = tmp_path / f"{name}.toml"
    p.write_text(CONFIG.format(out=tmp_path / name, rate=rate))
    cfg = load_config(p)
    run_synth(cfg)
    return cfg, run_prep(cfg, progress=False)["bo"]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bridged_documents_are_the_pairs_switched_at_the_rate(tmp_path):
    cfg, stats = build(tmp_path, "a", 0.5)
    plain_cfg, plain = build(tmp_path, "b", 0.0)
    synth = layout.of(cfg).synth
    lexicon = dict(line.split("\t") for line in synth.joinpath("bo_lexicon.tsv").read_text(encoding="utf-8").splitlines())
    back = {x: e for e, x in lexicon.items()} | {"།": "."}

    cs = stats["codeswitch"]
    assert cs["lexicon"] == str(synth / "bo_lexicon.tsv") and cs["lexicon_entries"] == len(lexicon)
    assert cs["words_listed"] > 500 and abs(cs["words_switched"] / cs["words_listed"] - 0.5) < 0.05
    assert "codeswitch" not in plain

    with_dir = layout.of(cfg).prep / "bo" / "with"
    prov = pl.read_parquet(with_dir / "bo_with.provenance.parquet").filter(pl.col("kind") == "bridged")
    text = pl.read_parquet(with_dir / "bo_with.chunks.parquet").group_by("document_id").agg(pl.col("text").str.join(""))
    docs = prov.join(text, on="document_id")
    pairs = synth.joinpath("bo_en.tsv").read_text(encoding="utf-8").splitlines()
    switched_docs = 0
    for row in docs.iter_rows(named=True):
        en, xx = pairs[row["line"] - 1].split("\t")
        # Each word is its pair's word or that word's translation: mapped back to
        # English, the document is the English sentence twice.
        assert " ".join(back.get(w, w) for w in row["text"].split()) == f"{en} {en}", row
        switched_docs += row["text"] != f"{en} {xx}"
    assert switched_docs > 0.9 * docs.height > 50
    # The same pairs are bridged; "without" is untouched by the switch.
    plain_with = pl.read_parquet(layout.of(plain_cfg).prep / "bo" / "with" / "bo_with.provenance.parquet")
    assert plain_with["line"].to_list() == pl.read_parquet(with_dir / "bo_with.provenance.parquet")["line"].to_list()
    without = lambda c: sha(layout.of(c).prep / "bo" / "without" / "bo_without.bin")  # noqa: E731
    assert without(cfg) == without(plain_cfg)


def test_switch_rate_needs_a_lexicon_and_a_rate(tmp_path):
    base = """
[experiment]
name = "c"
out_dir = "{out}"
[tokenizer]
name = "t.json"
[prep.languages.bo]
mono_paths = ["m.jsonl"]
pair_paths = ["p.tsv"]
"""
    for extra, key in (("switch_rate = 0.5", "prep.languages.bo.lexicon"), ('switch_rate = 1.5\nlexicon = "l.tsv"', "prep.languages.bo.switch_rate")):
        p = tmp_path / "c.toml"
        p.write_text(base.format(out=tmp_path) + extra)
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert e.value.key == key


def test_a_bad_lexicon_line_is_named(tmp_path):
    cfg, _ = build(tmp_path, "a", 0.0)
    lex = layout.of(cfg).synth / "bo_lexicon.tsv"
    lines = lex.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace("\t", " ")
    lex.write_text("\n".join(lines) + "\n", encoding="utf-8")
    p = tmp_path / "bad.toml"
    p.write_text(CONFIG.format(out=tmp_path / "a", rate=0.3))
    with pytest.raises(InputError, match=r"bo_lexicon\.tsv:5: expected an English word") as e:
        run_prep(load_config(p), progress=False)
    assert (e.value.path, e.value.line) == (str(lex), 5)

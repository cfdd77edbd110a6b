"""The prep outputs, read back with megatron-core and checked against the inputs."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import regex
from tokenizers import Tokenizer

from xcult import _core, layout
from xcult.tokenizer import QWEN25_LAST_ID

indexed_dataset = pytest.importorskip("megatron.core.datasets.indexed_dataset")

LATIN = regex.compile(r"\p{Script=Latin}")
NON_LATIN_LETTER = regex.compile(r"[\p{L}--[\p{Script=Latin}\p{Script=Common}\p{Script=Inherited}]]", regex.V1)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_line(source: str, line: int) -> str:
    opener = gzip.open if source.endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8") as f:
        for i, text in enumerate(f, 1):
            if i == line:
                return text.rstrip("\n")
    raise AssertionError(f"{source} has no line {line}")


def outputs(cfg):
    root = layout.of(cfg).prep
    yield "en", None, root / "en" / "en"
    for lang in ("zh", "bo"):
        for setting in ("with", "without"):
            yield lang, setting, root / lang / setting / f"{lang}_{setting}"


def expected_text(cfg, lang, row) -> str:
    """The filtered text of one output document, rebuilt from its source line."""
    raw = source_line(row["source"], row["line"])
    if lang == "en":
        return _core.filter_texts([json.loads(raw)["text"]], ["Latin"], 20)[0]
    keep = cfg.keep_scripts(lang)
    if row["kind"] == "mono":
        text = json.loads(raw)["text"] if row["source"].endswith(".gz") else raw
        return _core.filter_texts([text], keep, 1)[0]
    if row["source"].endswith(".tsv"):
        en, xx = raw.split("\t")
    else:
        en, xx = raw, source_line(row["source"][: -len(".en")] + ".bo", row["line"])
    en, xx = _core.filter_texts([en], ["Latin"])[0], _core.filter_texts([xx], keep)[0]
    return {"pair_en": en, "pair_xx": xx, "bridged": cfg.template(lang).replace("{en}", en).replace("{xx}", xx)}[row["kind"]]


def test_every_document_equals_hf_tokenizers_encoding_plus_eod(built):
    cfg, _ = built
    tok = Tokenizer.from_file(str(layout.of(cfg).prep / "tokenizer" / "qwen2.5-tokenizer.json"))
    eod = tok.token_to_id("<|endoftext|>")
    for lang, _, prefix in outputs(cfg):
        ds = indexed_dataset.IndexedDataset(str(prefix))
        prov = pl.read_parquet(f"{prefix}.provenance.parquet")
        assert len(ds) == prov.height > 0
        texts = [expected_text(cfg, lang, row) for row in prov.iter_rows(named=True)]
        for i, enc in enumerate(tok.encode_batch(texts, add_special_tokens=False)):
            assert ds[i].tolist() == enc.ids + [eod], f"{prefix} document {i}"


def test_bytes_equal_megatron_indexed_dataset_builder(built, tmp_path):
    cfg, _ = built
    for _, _, prefix in outputs(cfg):
        ds = indexed_dataset.IndexedDataset(str(prefix))
        dtype = indexed_dataset.DType.optimal_dtype(QWEN25_LAST_ID + 1)
        out = tmp_path / prefix.name
        builder = indexed_dataset.IndexedDatasetBuilder(f"{out}.bin", dtype=dtype)
        for i in range(len(ds)):
            builder.add_document(np.asarray(ds[i]), [len(ds[i])])
        builder.finalize(f"{out}.idx")
        assert sha(Path(f"{out}.bin")) == sha(Path(f"{prefix}.bin"))
        assert sha(Path(f"{out}.idx")) == sha(Path(f"{prefix}.idx"))


def test_scripts_are_isolated(built):
    cfg, _ = built
    tok = Tokenizer.from_file(str(layout.of(cfg).prep / "tokenizer" / "qwen2.5-tokenizer.json"))
    for lang, _, prefix in outputs(cfg):
        ds = indexed_dataset.IndexedDataset(str(prefix))
        kinds = pl.read_parquet(f"{prefix}.provenance.parquet")["kind"].to_list()
        for i, kind in enumerate(kinds):
            text = tok.decode(ds[i].tolist(), skip_special_tokens=True)
            english = lang == "en" or kind == "pair_en"
            if english:
                assert not NON_LATIN_LETTER.search(text), f"{prefix} document {i}: {text[:80]!r}"
            elif kind in ("mono", "pair_xx"):
                assert not LATIN.search(text), f"{prefix} document {i}: {text[:80]!r}"
            assert "\ufffd" not in text
    stats = json.loads((layout.of(cfg).prep / "en" / "stats.json").read_text())
    removed = stats["inputs"]["documents"]["chars_removed_by_script"]
    assert removed["Han"] > 0 and removed["Tibetan"] > 0


def test_with_and_without_hold_the_same_pairs_and_mono_documents(built):
    cfg, _ = built
    root = layout.of(cfg).prep
    for lang in ("zh", "bo"):
        w = pl.read_parquet(root / lang / "with" / f"{lang}_with.provenance.parquet")
        wo = pl.read_parquet(root / lang / "without" / f"{lang}_without.provenance.parquet")
        pairs = lambda df, kind: sorted(df.filter(pl.col("kind") == kind)["pair_id"].to_list())  # noqa: E731
        assert pairs(w, "bridged") == pairs(wo, "pair_en") == pairs(wo, "pair_xx")
        assert len(pairs(w, "bridged")) > 100
        mono = lambda df: sorted(df.filter(pl.col("kind") == "mono").select("source", "line").rows())  # noqa: E731
        assert mono(w) == mono(wo) and len(mono(w)) > 10


def test_ratio_is_one_to_one_within_two_percent(built):
    _, stats = built
    for lang in ("zh", "bo"):
        sel = stats[lang]["selection"]
        assert abs(sel["ratio_mono_per_parallel"] - 1.0) < 0.02, sel
        without = next(o for o in stats[lang]["outputs"] if o["setting"] == "without")
        assert abs(without["ratio_mono_per_parallel"] - 1.0) < 0.02
        assert without["min_pair_distance"] >= sel["pairs"] - 1
        with_ = next(o for o in stats[lang]["outputs"] if o["setting"] == "with")
        assert with_["bridge_tokens"] == with_["parallel_tokens"] - sel["parallel_tokens"]


def test_chunks_cover_documents_within_the_limit(built):
    cfg, _ = built
    for _, _, prefix in outputs(cfg):
        chunks = pl.read_parquet(f"{prefix}.chunks.parquet")
        assert chunks.columns == ["chunk_id", "document_id", "language", "text"]
        assert chunks["text"].str.len_chars().max() <= cfg.prep.chunk_chars
        n_docs = pl.read_parquet(f"{prefix}.provenance.parquet").height
        assert chunks["document_id"].n_unique() == n_docs


def test_manifest_traces_inputs_and_outputs(built):
    cfg, stats = built
    m = json.loads((layout.of(cfg).prep / "manifest.json").read_text())
    assert m["tool_version"] and m["config"]["experiment"]["seed"] == 1234
    assert all(len(h) == 64 for h in m["inputs"].values()) and len(m["inputs"]) == 6
    assert set(m["units"]) == {"en", "zh", "bo"}
    for unit in m["units"]:
        job = json.loads((layout.of(cfg).prep / unit / "job.json").read_text())
        assert job["engine"]["seed"] == 1234

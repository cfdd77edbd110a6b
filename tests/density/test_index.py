"""BM25 indexes over prep chunks: analyzers on real probe text, planted retrieval, CLI."""

import json
import unicodedata

import polars as pl
import pytest
from click.testing import CliRunner

from tests.conftest import PROBES, write_config
from xcult import _core, layout
from xcult.cli import main
from xcult.config import load_config
from xcult.density.index import build_indexes, retrieve_probes, search
from xcult.errors import ConfigError, InputError, MissingPathError

SCRIPT_OF_LANG = {"zh": "CJK", "bo": "TIBETAN"}


@pytest.mark.parametrize("lang", ["zh", "bo"])
def test_analyzers_on_real_probes(lang):
    path = PROBES / f"{lang}-culture-cloze_{lang}.json"
    if not path.exists():
        pytest.skip("../shared/data/probes is absent")
    questions = [q["question"].replace("_", "") for q in json.loads(path.read_text(encoding="utf-8"))]
    terms = _core.analyze(lang, questions)
    assert all(terms), "every question yields terms"
    letters = [c for ts in terms for t in ts for c in t if unicodedata.category(c)[0] == "L"]
    native = sum(SCRIPT_OF_LANG[lang] in unicodedata.name(c, "") for c in letters)
    assert native / len(letters) > 0.95  # terms are in the language's own script
    flat = [t for ts in terms for t in ts]
    if lang == "zh":  # Han unigrams and bigrams, never a whole unspaced run
        assert max(len(t) for t in flat if all("CJK" in unicodedata.name(c, "") for c in t)) == 2
    else:  # syllables keep their vowel signs and subjoined letters
        assert any(unicodedata.category(c) == "Mn" for t in flat for c in t)
        assert all("\u0f0b" not in t or t.count("\u0f0b") == 1 for t in flat)  # a syllable or a pair


def test_mongolian_and_unknown_language():
    assert _core.analyze("mn", ["ᠮᠣᠩᠭᠣᠯ\u180b\u202fᠤᠨ ᠭᠠᠷ\u180eᠠ"]) == [["ᠮᠣᠩᠭᠣᠯ", "ᠤᠨ", "ᠭᠠᠷᠠ"]]
    with pytest.raises(ConfigError):
        _core.analyze("xx", ["a"])


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, sample_inputs, built):
    cfg, _ = built
    d = tmp_path_factory.mktemp("index")
    path = write_config(d / "c.toml", sample_inputs, cfg.out_dir)
    path.write_text(path.read_text().replace("[prep]\n", '[index]\ntop_k = 5\n\n[prep]\n', 1))
    cfg = load_config(path)
    return cfg, build_indexes(cfg, force=True)


def test_every_corpus_is_indexed_with_its_own_chunks(indexed):
    cfg, stats = indexed
    assert set(stats) == {"en", "zh", "bo"}
    en = pl.read_parquet(cfg.out_dir / "prep" / "en" / "en.chunks.parquet")
    assert stats["en"]["chunks"] == en.height and stats["en"]["chunks_skipped_language"] == 0
    zh = pl.read_parquet(cfg.out_dir / "prep" / "zh" / "without" / "zh_without.chunks.parquet")
    assert stats["zh"]["chunks"] == (zh["language"] == "zh").sum() and stats["zh"]["chunks_skipped_language"] == (zh["language"] == "en").sum()
    assert json.loads((layout.of(cfg).index / "zh" / "job.json").read_text())["keep_languages"] == ["zh"]
    again = build_indexes(cfg)
    assert all(s.get("skipped") for s in again.values())


# The sample English corpus draws from a small vocabulary (no term is unique to one
# chunk); English ranking is covered by the planted-document test in rust_core/src/bm25.rs.
@pytest.mark.parametrize("corpus", ["zh", "bo"])
def test_a_chunk_is_found_first_by_its_unique_terms(indexed, corpus):
    cfg, _ = indexed
    job = json.loads((layout.of(cfg).index / corpus / "job.json").read_text())
    chunks = pl.read_parquet(job["chunks"])
    if job["keep_languages"]:
        chunks = chunks.filter(pl.col("language").is_in(job["keep_languages"]))
    terms = [set(t) for t in _core.analyze(corpus, chunks["text"].to_list())]
    df = {}
    for ts in terms:
        for t in ts:
            df[t] = df.get(t, 0) + 1
    # A query of terms that occur in one chunk only must rank that chunk first, alone.
    tested = 0
    for i in range(chunks.height):
        unique = sorted(t for t in terms[i] if df[t] == 1)[:5]
        if not unique:
            continue
        hits = search(layout.of(cfg).index / corpus, [" ".join(unique)], 5)[0]
        assert hits["chunk_id"][0] == chunks["chunk_id"][i], (corpus, unique, hits)
        assert hits.height == 1 or hits["score"][0] > hits["score"][1]
        assert hits["text"][0] == chunks["text"][i]
        tested += 1
        if tested == 5:
            break
    assert tested >= 3  # the sample corpora are small


def test_search_cli_and_missing_index(indexed, tmp_path):
    cfg, _ = indexed
    word = pl.read_parquet(cfg.out_dir / "prep" / "en" / "en.chunks.parquet")["text"][0].split()[3]
    r = CliRunner().invoke(main, ["search", str(layout.of(cfg).index / "en"), word, "-k", "3"])
    assert r.exit_code == 0 and r.output.count("chunk ") == 3 and word.lower() in r.output.lower()
    with pytest.raises(MissingPathError):
        search(tmp_path, ["x"], 1)


def test_probe_retrieval(indexed, tmp_path):
    if not (PROBES / "zh-culture-cloze_en.json").exists():
        pytest.skip("../shared/data/probes is absent")
    cfg, _ = indexed
    path = tmp_path / "c.toml"
    path.write_text(open(cfg.path).read() + f'\n[eval]\nprobes = "{PROBES}"\ncultures = ["zh", "bo"]\n')
    out = retrieve_probes(load_config(path))
    r = pl.read_parquet(out)
    assert set(r["corpus"]) == {"en", "zh", "bo"} and r["rank"].max() <= 5
    # every statement of a culture is searched in both corpora; ranks are 1..n per statement
    per = r.group_by("culture", "lang", "item").agg(pl.col("rank").sort().alias("ranks"))
    assert all(ranks == list(range(1, len(ranks) + 1)) for ranks in per["ranks"].to_list())


def test_index_over_changed_chunks_is_rebuilt(tmp_path, sample_inputs):
    """An index is reused only over the same chunk files: new chunks (a rebuilt prep
    unit) make it stale, and it is rebuilt."""
    from xcult.corpus.stage import run_prep
    from xcult.density.index import index_status

    path = write_config(tmp_path / "c.toml", sample_inputs, tmp_path / "run", langs=("zh",))
    cfg = load_config(path)
    run_prep(cfg, progress=False)
    first = build_indexes(cfg)
    assert index_status(cfg, "en").state == "current" and all(s.get("skipped") for s in build_indexes(cfg).values())
    path.write_text(path.read_text().replace("[prep]\n", "[prep]\nchunk_chars = 300\n", 1))
    cfg = load_config(path)
    run_prep(cfg, progress=False)
    st = index_status(cfg, "en")
    assert st.state == "stale" and "en.chunks.parquet changed" in st.reason
    again = build_indexes(cfg)
    assert not again["en"].get("skipped") and again["en"]["chunks"] > first["en"]["chunks"]


def test_an_index_of_an_older_format_is_rebuilt(indexed):
    """An index written before `impacts.bin` existed (format 1: its record has no
    format) is stale and rebuilt, not opened and failed on."""
    from xcult import completion
    from xcult.density.index import INDEX_FORMAT, index_status

    cfg, _ = indexed
    final = layout.of(cfg).index_dir("en")
    rec = json.loads((final / completion.RECORD).read_text())
    del rec["settings"]["format"]
    (final / completion.RECORD).write_text(json.dumps(rec))
    (final / "impacts.bin").unlink()
    with pytest.raises(InputError, match="impacts.bin.*xcult index --force"):
        _core.Bm25Index(str(final), "en")
    st = index_status(cfg, "en")
    assert st.state == "stale" and f"format null -> {INDEX_FORMAT}" in st.reason
    assert not build_indexes(cfg)["en"].get("skipped") and (final / "impacts.bin").is_file()
    assert _core.Bm25Index(str(final), "en").num_chunks > 0

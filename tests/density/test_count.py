"""`xcult count`: infini-gram byte datastores of the prep corpora, exact counts checked
against brute force, the entity rule, co-occurrence within a window, the stage."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

import infini_gram  # noqa: F401  (a needed dependency: failing to import is a failure)
from click.testing import CliRunner

from tests.conftest import write_config
from xcult import _core, layout
from xcult.cli import main
from xcult.config import load_config
from xcult.density.count import Datastore, answer_query, datastore_status, entity, run_count, suffix_array, words
from xcult.density.density import corpus_documents
from xcult.probes import load_culture


def documents(job: dict) -> list[str]:
    """The corpus's documents as the datastore holds them: chunks of a document joined by
    a newline, in the chunk files' order, only the kept languages."""
    chunks = pl.read_parquet(job["chunks"])
    if job["keep_languages"]:
        chunks = chunks.filter(pl.col("language").is_in(job["keep_languages"]))
    return chunks.group_by("document_id", maintain_order=True).agg(pl.col("text").str.join("\n"))["text"].to_list()


def brute_count(docs: list[str], s: str) -> int:
    """Every position where `s` starts (overlapping occurrences count), as a suffix array counts."""
    b = s.encode()
    total = 0
    for d in docs:
        data, at = d.encode(), 0
        while (at := data.find(b, at)) != -1:
            total += 1
            at += 1
    return total


def positions(d: bytes, b: bytes) -> list[int]:
    out, at = [], 0
    while (at := d.find(b, at)) != -1:
        out.append(at)
        at += 1
    return out


def brute_near(docs: list[str], a: str, b: str, window: int) -> int:
    """Occurrences of a with an occurrence of b in the same document, starts within `window` bytes."""
    total = 0
    for d in docs:
        data = d.encode()
        pb = positions(data, b.encode())
        total += sum(any(abs(q - p) <= window for q in pb) for p in positions(data, a.encode()))
    return total


def probes_from(texts: list[str], out, culture="zh", lang="zh", n=6, seed=0):
    """Cloze items cut from corpus text: a few characters blanked out as the answer."""
    rng = random.Random(seed)
    items = {"en": [], lang: []}
    for which, pool in (("en", texts["en"]), (lang, texts[lang])):
        for _ in range(n):
            t = rng.choice([x for x in pool if len(x) > 60])
            a = rng.randrange(20, len(t) - 30)
            k = 2 if which == lang else 6
            answer = t[a : a + k]
            question = t[a - 20 : a] + "____" + t[a + k : a + k + 20]
            options = [answer] + [answer + c for c in "xyz"]
            items[which].append({"question": question, "options": options, "answer": answer})
    for which, rows in items.items():
        (out / f"{culture}-culture-cloze_{which}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def counted(tmp_path_factory, sample_inputs, built):
    cfg, _ = built
    d = tmp_path_factory.mktemp("count")
    path = write_config(d / "c.toml", sample_inputs, cfg.out_dir)
    texts = {
        "en": pl.read_parquet(cfg.out_dir / "prep" / "en" / "en.chunks.parquet")["text"].to_list(),
        "zh": pl.read_parquet(cfg.out_dir / "prep" / "zh" / "without" / "zh_without.chunks.parquet").filter(pl.col("language") == "zh")["text"].to_list(),
    }
    (d / "probes").mkdir()
    probes_from(texts, d / "probes")
    path.write_text(path.read_text() + f'\n[index]\ncorpora = ["en", "zh"]\n\n[eval]\nprobes = "{d / "probes"}"\ncultures = ["zh"]\n\n[count]\nwindow = 200\n')
    cfg = load_config(path)
    return cfg, run_count(cfg, force=True)


@pytest.mark.parametrize("corpus", ["en", "zh"])
def test_counts_equal_brute_force_over_the_documents(counted, corpus):
    cfg, stats = counted
    d = layout.of(cfg).count_dir(corpus)
    job = json.loads((d / "job.json").read_text())
    docs = documents(job)
    ds = Datastore(d)
    assert ds.documents() == len(docs) == stats["datastores"][corpus]["documents"] == corpus_documents(job["chunks"], job["keep_languages"])
    rng = random.Random(1)
    found = 0
    for _ in range(150):
        t = rng.choice(docs)
        a = rng.randrange(len(t))
        s = t[a : a + rng.randint(1, 12)]
        want = brute_count(docs, s)
        assert ds.count(s) == (want, False), s
        found += want > 1
    for s in ("zzqx", "山水茶节马寺歌", "ལྷ་ས་ཀ་ཁ", "\n\n\n\n"):
        assert ds.count(s)[0] == brute_count(docs, s)
    assert found > 20  # many probes occur several times: counts, not presence


def test_answer_and_entity_within_a_window(tmp_path):
    texts = ["Tumo eat dunur.", "Tumo " + "x" * 600 + " dunur", "dunur alone", "the Tumo and Tumo eat dunur"]
    f = tmp_path / "c.parquet"
    pl.DataFrame(
        {"chunk_id": range(len(texts)), "document_id": range(len(texts)), "language": ["en"] * len(texts), "text": texts},
        schema={"chunk_id": pl.UInt64, "document_id": pl.UInt64, "language": pl.Utf8, "text": pl.Utf8},
    ).write_parquet(f)
    d = tmp_path / "ds"
    d.mkdir()
    stats = json.loads(_core.write_datastore(json.dumps({"chunks": [str(f)], "keep_languages": [], "out_dir": str(d)})))
    suffix_array(d, stats["bytes"], 1, 1)
    ds = Datastore(d)
    assert ds.count("dunur") == (4, False) and ds.count("Tumo") == (4, False)
    near, _ = ds.count_near("dunur", "Tumo", 500)
    far, _ = ds.count_near("dunur", "Tumo", 1000)
    assert near == 2 and far == 3  # document 1's pair is 605 bytes apart; document 2 has no Tumo
    assert ds.count_near("dunur", "", 500) == (0, False)


def test_entity_is_the_rarest_word_that_occurs(tmp_path):
    assert words("The Tumo people eat ____ in winter.") == ["The ", " Tumo ", " people ", " eat ", " in ", " winter"]
    assert answer_query("They eat ____ in winter.", "rice") == " rice " and answer_query("吃____。", "米") == "米"
    assert "故事" in words("第1个故事里的山是____。") and "第1个故事里的山是" in words("第1个故事里的山是____。")

    class Fake:
        def __init__(self, **counts):
            self.counts = {"The ": 900, " Tumo ": 4, " people ": 50, " eat ": 70, " in ": 800, " winter": 30} | counts

        def count(self, w):
            return self.counts.get(w, 0), False

    assert entity(Fake(), "The Tumo people eat ____ in winter.") == (" Tumo ", 4)
    # a word of the question the corpus lacks is the entity (count 0), not the next-rarest word
    assert entity(Fake(**{" Tumo ": 0}), "The Tumo people eat ____ in winter.") == (" Tumo ", 0)
    # unspaced text: sub-strings the corpus lacks are passed over
    assert entity(Fake(**{"故事": 3, "里的": 900}), "第1个故事里的山是____。") == ("故事", 3)


def test_probe_counts_and_the_stage(counted):
    cfg, stats = counted
    lay = layout.of(cfg)
    c = pl.read_parquet(lay.counts)
    assert c.height == stats["probes"] == 12 and set(c["corpus"]) == {"en", "zh"}
    # answers were cut from the corpus: each occurs, and a statement never more often than its answer
    assert (c["exact_answer"] >= 1).all() and (c["exact_statement"] <= c["exact_answer"]).all()
    assert (c["exact_statement"] >= 1).sum() >= 6  # most statements are the corpus text put back
    assert (c["entity"] != "").all()
    culture = load_culture(cfg.eval.probes, "zh", "zh")
    for corpus in ("en", "zh"):
        docs = documents(json.loads((lay.count_dir(corpus) / "job.json").read_text()))
        items = dict(zip(culture.index, culture.items(corpus)))
        g = c.filter(pl.col("corpus") == corpus)
        for r in g.iter_rows(named=True):
            it = items[r["item"]]
            query = answer_query(it.question, it.answer)
            assert r["exact_answer"] == brute_count(docs, query)
            assert r["exact_statement"] == brute_count(docs, it.statement())
            assert r["exact_answer_entity"] == brute_near(docs, query, r["entity"], cfg.count.window), (query, r["entity"])
    assert (c["exact_answer_entity"] < c["exact_answer"]).any() and (c["exact_answer_entity"] > 0).any()  # the window matters, and finds
    assert all(datastore_status(cfg, corpus).state == "current" for corpus in ("en", "zh"))
    r = CliRunner().invoke(main, ["count", cfg.path])
    assert r.exit_code == 0, r.output
    assert "12 probes counted" in r.output
    assert run_count(cfg)["built_now"] == []  # current datastores are kept

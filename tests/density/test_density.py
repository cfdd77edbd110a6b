"""Density arithmetic on a hand-made case."""

from __future__ import annotations

import polars as pl
import pytest

from xcult.density.density import corpus_documents, density_table, instance_occurrences, occurrences


def judgments() -> pl.DataFrame:
    # culture bo, English questions in the en corpus, native in bo: item 0 is entailed by
    # two chunks of one document and one of another in en; item 1 by nothing in en.
    rows = [
        ("bo", "en", "en", 0, 10, 1, True),
        ("bo", "en", "en", 0, 11, 1, True),
        ("bo", "en", "en", 0, 12, 2, True),
        ("bo", "en", "en", 0, 13, 3, False),
        ("bo", "en", "en", 1, 14, 4, False),
        ("bo", "bo", "bo", 0, 20, 5, True),
        ("bo", "bo", "bo", 1, 21, 6, True),
        ("bo", "bo", "bo", 1, 22, 7, True),
        ("bo", "bo", "bo", 1, 23, 8, True),
    ]
    return pl.DataFrame(rows, schema=["culture", "lang", "corpus", "item", "chunk_id", "document_id", "entailed"], orient="row")


def test_occurrences_count_documents_and_keep_unfound_items():
    occ = occurrences(judgments())
    assert occ.select("lang", "item", "occurrences").rows() == [("bo", 0, 1), ("bo", 1, 3), ("en", 0, 2), ("en", 1, 0)]


def test_density_is_occurrences_over_documents():
    occ = occurrences(judgments()).with_columns(cooccurrence=pl.Series([4, 6, 1, 0]))
    d = density_table(occ, {"en": 1_000_000, "bo": 400})
    en = d.filter(pl.col("corpus") == "en").row(0, named=True)
    bo = d.filter(pl.col("corpus") == "bo").row(0, named=True)
    assert (en["items"], en["occurrences"], en["items_found"], en["cooccurrence"]) == (2, 2, 1, 1)
    assert en["density"] == pytest.approx(2 / 1_000_000) and en["density_per_item"] == pytest.approx(1 / 1_000_000)
    assert bo["density"] == pytest.approx(4 / 400) and bo["mean_cooccurrence"] == pytest.approx(5.0)


def test_instance_occurrences_use_the_source_corpus():
    occ = occurrences(judgments())
    inst = pl.DataFrame(
        {
            "culture": ["bo"] * 4,
            "direction": ["bo->en", "bo->en", "en->bo", "en->bo"],
            "item": [0, 1, 0, 1],
            "candidate": [True, True, True, False],
            "transferred": [False, True, True, False],
        }
    )
    t = instance_occurrences(inst, occ)
    got = {(r["direction"], r["group"]): (r["items"], r["mean_occurrences"]) for r in t.iter_rows(named=True)}
    # bo->en: occurrences in the bo corpus (item 0: 1, item 1: 3); en->bo: in en (2, 0).
    assert got[("bo->en", "transferred")] == (1, 3.0)
    assert got[("bo->en", "candidate")] == (2, 2.0)
    assert got[("en->bo", "transferred")] == (1, 2.0)
    assert got[("en->bo", "all")] == (2, 1.0)


def test_corpus_documents_filters_languages(tmp_path):
    f = tmp_path / "c.parquet"
    pl.DataFrame({"chunk_id": [0, 1, 2, 3], "document_id": [0, 0, 1, 2], "language": ["bo", "bo", "en", "bo"], "text": ["a"] * 4}).write_parquet(f)
    assert corpus_documents([str(f)], ["bo"]) == 2 and corpus_documents([str(f)], []) == 3


def test_exact_counts_sum_into_the_density_table():
    occ = occurrences(judgments()).with_columns(
        exact_answer=pl.Series([9, 7, 5, 3]), exact_statement=pl.Series([1, 0, 2, 0]), exact_answer_entity=pl.Series([4, 2, 3, 0])
    )
    d = density_table(occ, {"en": 1000, "bo": 400})
    en = d.filter(pl.col("corpus") == "en").row(0, named=True)
    bo = d.filter(pl.col("corpus") == "bo").row(0, named=True)
    assert (en["exact_answer"], en["exact_statement"], en["exact_answer_entity"]) == (8, 2, 3)
    assert bo["density_exact"] == pytest.approx(6 / 400) and en["density_exact"] == pytest.approx(3 / 1000)
    assert "density_exact" not in density_table(occurrences(judgments()), {"en": 1000, "bo": 400}).columns

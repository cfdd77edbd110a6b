"""Transfer and appendix C.4 tables on a synthetic prediction table."""

import polars as pl
import pytest

from xcult.eval.transfer import instance_table, main_table, transfer_table


def table(correct: dict) -> pl.DataFrame:
    """correct[(setting, step, lang)] = list of booleans per item."""
    rows = []
    for (setting, step, lang), vals in correct.items():
        for item, c in enumerate(vals):
            rows.append({"setting": setting, "step": step, "culture": "bo", "lang": lang, "item": item, "correct": c})
    return pl.DataFrame(rows)


T, F = True, False


def test_transfer_gap_and_significance():
    n = 40
    pred = table(
        {
            ("with", 0, "en"): [F] * n,
            ("without", 0, "en"): [F] * n,
            ("with", 0, "bo"): [F] * n,
            ("without", 0, "bo"): [F] * n,
            ("with", 100, "en"): [T] * 30 + [F] * 10,  # 30 right with bridges
            ("without", 100, "en"): [T] * 5 + [F] * 35,  # 5 right without
            ("with", 100, "bo"): [T] * 21 + [F] * 19,
            ("without", 100, "bo"): [T] * 20 + [F] * 20,
        }
    )
    t = transfer_table(pred, n_boot=2000)
    row = t.filter((pl.col("step") == 100) & (pl.col("lang") == "en")).row(0, named=True)
    assert row["direction"] == "bo->en" and row["acc_with"] == 0.75 and row["acc_without"] == 0.125
    assert row["gap"] == pytest.approx(0.625) and row["significant"] and row["p_mcnemar"] < 1e-6
    assert row["ci_low"] < 0.625 < row["ci_high"]
    other = t.filter((pl.col("step") == 100) & (pl.col("lang") == "bo")).row(0, named=True)
    assert other["direction"] == "en->bo" and other["p_mcnemar"] == 1.0 and not other["significant"]
    m = main_table(t)
    assert m.height == 2 and set(m["step"]) == {100}
    assert dict(zip(m["direction"], m["mark"])) == {"bo->en": "✓", "en->bo": "✗"}
    # Holm over the two cells: the smaller p doubles, the larger stays (capped at 1)
    p = dict(zip(m["direction"], m["p_mcnemar"]))
    holm = dict(zip(m["direction"], m["p_holm"]))
    assert holm["bo->en"] == pytest.approx(2 * p["bo->en"]) and holm["en->bo"] == 1.0
    assert m.filter(pl.col("direction") == "bo->en")["significant_holm"].item()


def test_instance_criteria_c4():
    # items: 0 transfers bo->en; 1 learned in bo but not carried to en; 2 known in en before;
    # 3 right in en with bridges at only two of the last three checkpoints.
    steps = [0, 100, 200, 300]
    c = {}
    for s in steps:
        late = s > 0
        c[("without", s, "en")] = [F, F, T, F]
        c[("with", s, "en")] = [late, F, T, late and s != 200]
        c[("without", s, "bo")] = [late, late, T, late]
        c[("with", s, "bo")] = [late, late, T, late]
    for k in list(c):  # step 0 is the same pretrained model in both settings
        if k[1] == 0:
            c[("with", 0, k[2])] = c[("without", 0, k[2])] = [F, F, T, F]
    inst = instance_table(table(c), last_k=3)
    x_en = inst.filter(pl.col("direction") == "bo->en").sort("item")
    assert x_en["candidate"].to_list() == [T, T, F, T]
    assert x_en["transferred"].to_list() == [T, F, F, F]
    en_x = inst.filter(pl.col("direction") == "en->bo").sort("item")
    # en->bo: wrong in bo before (items 0, 1, 3) and right in en without bridges (none: en stays wrong)
    assert en_x["candidate"].to_list() == [F, F, F, F]
    # with last_k=1 item 3 counts (right at the final bridged checkpoint)
    assert instance_table(table(c), last_k=1).filter(pl.col("direction") == "bo->en").sort("item")["transferred"].to_list() == [T, F, F, T]


def test_no_step_zero_no_instances():
    pred = table({("with", 100, "en"): [T], ("without", 100, "en"): [F], ("with", 100, "bo"): [T], ("without", 100, "bo"): [F]})
    assert instance_table(pred).is_empty()

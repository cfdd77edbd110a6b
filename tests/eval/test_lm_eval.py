"""lm-evaluation-harness interoperability, with lm-eval run for real: the tasks `xcult
probes to-lm-eval` writes give the log-likelihoods and accuracies `xcult eval` logs, the
metric correspondence holds, and `xcult compare` reads both kinds of log."""

import json
import os
import random
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

pytest.importorskip("transformers")
import lm_eval  # noqa: E402, F401  (a needed dependency: failing to import is a failure)
from click.testing import CliRunner  # noqa: E402

from tests.eval.test_run import sweep  # noqa: E402, F401  (the fixture)
from tests.test_probes import write_pair  # noqa: E402
from xcult import layout  # noqa: E402
from xcult.cli import main  # noqa: E402
from xcult.config import load_config  # noqa: E402
from xcult.eval.compare import compare  # noqa: E402
from xcult.eval.lm_eval_format import read_samples  # noqa: E402
from xcult.eval.run import evaluate_one, run_eval  # noqa: E402

WORDS = ["river", "mountain", "tea", "festival", "barley", "horse", "temple", "song", "winter", "market", "salt", "silk"]
HAN = "山水茶节马寺歌冬市盐丝麦花月风雪石"


def probe_set(d, n=24, seed=0):
    """n aligned English/Chinese cloze items with options of different lengths (so the
    per-character and total rules can disagree)."""
    rng = random.Random(seed)
    en, zh = [], []
    for i in range(n):
        opts = rng.sample(WORDS, 4)
        opts = [o * rng.randint(1, 2) for o in opts]
        en.append({"question": f"In story {i} the {rng.choice(WORDS)} is ____.", "options": opts, "answer": opts[i % 4]})
        zopts = ["".join(rng.choices(HAN, k=rng.randint(1, 4))) for _ in range(4)]
        while len(set(zopts)) < 4:
            zopts = ["".join(rng.choices(HAN, k=rng.randint(1, 4))) for _ in range(4)]
        zh.append({"question": f"第{i}个故事里的{rng.choice(HAN)}是____。", "options": zopts, "answer": zopts[i % 4]})
    return write_pair(d, en, zh, culture="zh")


@pytest.fixture(scope="module")
def both_logs(tmp_path_factory, tiny_model):
    """xcult's and lm-eval's sample logs of the same model on the same probe set."""
    d = tmp_path_factory.mktemp("lmeval")
    (d / "probes").mkdir()
    probes = probe_set(d / "probes")
    r = CliRunner().invoke(main, ["probes", "to-lm-eval", str(d / "tasks"), "--probes", str(probes), "--cultures", "zh"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (d / "tasks").glob("*.yaml")) == ["xcult.yaml", "xcult_zh_en.yaml", "xcult_zh_zh.yaml"]
    evaluate_one(tiny_model, str(probes), ["zh"], metric="sum", out=d / "xcult", progress=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(d / "hf-cache")}
    cmd = [
        sys.executable, "-m", "lm_eval", "run", "--model", "hf", "--model_args", f"pretrained={tiny_model},dtype=float32",
        "--tasks", "xcult", "--include_path", str(d / "tasks"), "--log_samples", "--output_path", str(d / "lm"),
        "--device", "cpu", "--batch_size", "8",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return d, probes


def samples(root, task):
    (f,) = root.rglob(f"samples_{task}_*.jsonl")
    return [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("task", ["xcult_zh_en", "xcult_zh_zh"])
def test_lm_eval_scores_the_tasks_as_xcult_logs_them(both_logs, task):
    d, _ = both_logs
    ours, theirs = samples(d / "xcult" / "lm_eval", task), samples(d / "lm", task)
    assert len(ours) == len(theirs) == 24
    spread = []
    for a, b in zip(ours, theirs):
        assert a["doc_hash"] == b["doc_hash"] and a["doc"] == b["doc"]  # the same question, in the same place
        assert a["arguments"] == b["arguments"] and a["target"] == b["target"]
        la = np.array([float(x[0]) for x in a["filtered_resps"]])
        lb = np.array([float(x[0]) for x in b["filtered_resps"]])
        # fp32 on both sides; sums of ~10-20 token log-probabilities
        np.testing.assert_allclose(la, lb, atol=2e-3, rtol=0)
        assert [x[1] for x in a["filtered_resps"]] == [x[1] for x in b["filtered_resps"]]
        assert (a["acc"], a["acc_norm"]) == (b["acc"], b["acc_norm"])
        spread.append(np.ptp(la))
    assert min(spread) > 0.01  # options differ by far more than the tolerance
    # the two rules disagree somewhere, so the per-sample equality above tests both
    assert any(s["acc"] != s["acc_norm"] for s in ours)
    (res,) = (d / "lm").rglob("results_*.json")
    got = json.loads(res.read_text())["results"][task]
    mine = json.loads(next((d / "xcult" / "lm_eval").glob("results_*.json")).read_text())["results"][task]
    for k in ("acc,none", "acc_norm,none", "acc_stderr,none"):
        assert mine[k] == pytest.approx(got[k], abs=1e-12)


def test_xcult_metrics_sum_and_per_char_are_lm_eval_acc_and_acc_norm(both_logs, tiny_model):
    d, probes = both_logs
    for metric, key in (("sum", "acc"), ("per_char", "acc_norm")):
        evaluate_one(tiny_model, str(probes), ["zh"], metric=metric, out=d / metric, progress=False)
        pred = pl.read_parquet(d / metric / "predictions.parquet").sort("lang", "item")
        for lang in ("en", "zh"):
            theirs = [s[key] == 1.0 for s in samples(d / "lm", f"xcult_zh_{lang}")]
            assert pred.filter(pl.col("lang") == lang)["correct"].to_list() == theirs


def test_compare_reads_xcult_and_lm_eval_logs(both_logs, tiny_model):
    d, probes = both_logs
    r = CliRunner().invoke(main, ["compare", str(d / "xcult" / "lm_eval"), str(d / "lm"), "--metric", "acc", "--out", str(d / "cmp.json")])
    assert r.exit_code == 0, r.output
    rows = json.loads((d / "cmp.json").read_text())["rows"]
    assert [x["task"] for x in rows] == ["xcult_zh_en", "xcult_zh_zh", "(all)"]
    assert all(x["gap"] == 0 and x["p_mcnemar"] == 1.0 and x["n"] in (24, 48) for x in rows)
    # the paper's metric is only in a log of xcult's `mean`; by default compare falls back to acc
    evaluate_one(tiny_model, str(probes), ["zh"], out=d / "mean", progress=False)
    r = CliRunner().invoke(main, ["compare", str(d / "mean" / "lm_eval"), str(d / "lm"), "--metric", "acc_mean"])
    assert r.exit_code == 2 and "log B does not hold 'acc_mean'" in r.output
    table, notes = compare(d / "mean" / "lm_eval", d / "lm")
    assert notes["metric"] == "acc" and (table["gap"] == 0).all()


def test_compare_of_two_checkpoints_is_the_transfer_table(sweep):  # noqa: F811
    cfg = load_config(sweep)
    run_eval(cfg, progress=False)
    lay = layout.of(cfg)
    assert sorted(p.name for p in (lay.eval / "lm_eval").iterdir()) == [f"bo-{s}-step{n:06d}" for s in ("with", "without") for n in (0, 100, 200)]
    table, notes = compare(lay.eval_lm_eval("bo", "with", 200), lay.eval_lm_eval("bo", "without", 200), None, cfg.eval.bootstrap, cfg.eval.alpha, cfg.experiment.seed)
    assert notes["metric"] == "acc_mean"
    transfer = pl.read_parquet(lay.eval_table("transfer")).filter(pl.col("step") == 200)
    for lang in ("en", "bo"):
        want = transfer.filter(pl.col("lang") == lang).row(0, named=True)
        got = table.filter(pl.col("task") == f"xcult_bo_{lang}").row(0, named=True)
        for k in ("n", "acc_with", "acc_without", "gap", "ci_low", "ci_high", "p_mcnemar"):
            assert got[{"acc_with": "acc_a", "acc_without": "acc_b"}.get(k, k)] == pytest.approx(want[k], abs=1e-12), k


def test_logs_of_different_questions_or_broken_lines_are_named(both_logs, tmp_path):
    d, _ = both_logs
    lines = (next((d / "lm").rglob("samples_xcult_zh_en_*.jsonl"))).read_text(encoding="utf-8").splitlines()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "samples_xcult_zh_en_2026.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    swapped = [json.loads(x) for x in lines]
    swapped[3]["doc_hash"] = swapped[4]["doc_hash"]
    (b / "samples_xcult_zh_en_2026.jsonl").write_text("\n".join(json.dumps(x) for x in swapped) + "\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert r.exit_code == 2 and "doc 3: the two logs hold different questions" in r.output
    (b / "samples_xcult_zh_en_2026.jsonl").write_text("\n".join(lines[:5]) + "\n{not json\n", encoding="utf-8")
    r = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert r.exit_code == 2 and "samples_xcult_zh_en_2026.jsonl:6: not an lm-eval sample" in r.output
    assert read_samples(a).height == 24

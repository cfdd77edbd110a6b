"""`xcult eval` end to end over a sweep of tiny checkpoints: outputs, consistency, resume."""

import json
import os

import polars as pl
import pytest

pytest.importorskip("transformers")
from click.testing import CliRunner  # noqa: E402

from tests.test_probes import write_pair  # noqa: E402
from xcult.cli import main  # noqa: E402
from xcult.config import load_config  # noqa: E402
from xcult.errors import MissingPathError  # noqa: E402
from xcult.eval.run import run_eval  # noqa: E402

EN = [
    {"question": "The capital of Tibet is ____.", "options": ["Lhasa", "Paris", "Rome", "Oslo"], "answer": "Lhasa"},
    {"question": "Butter tea is made with ____.", "options": ["yak butter", "olive oil", "sugar", "rice"], "answer": "yak butter"},
    {"question": "____ is a Tibetan festival.", "options": ["Losar", "Easter", "Diwali", "Halloween"], "answer": "Losar"},
    {"question": "The highest mountain is Mount ____.", "options": ["Everest", "Tai", "Fuji", "Blanc"], "answer": "Everest"},
]
BO = [
    {"question": "བོད་ཀྱི་རྒྱལ་ས་ནི་____ཡིན།", "options": ["ལྷ་ས", "པ་རི", "རོ་མ", "ཨོ་སི"], "answer": "ལྷ་ས"},
    {"question": "ཇ་ནི་____ནས་བཟོས།", "options": ["གཡག་མར", "ཨོ་ལི", "ཀ་ར", "འབྲས"], "answer": "གཡག་མར"},
    {"question": "____ནི་བོད་ཀྱི་དུས་ཆེན་ཡིན།", "options": ["ལོ་གསར", "ཨི་སི", "དི་ཝ་ལི", "ཧ་ལོ"], "answer": "ལོ་གསར"},
    {"question": "རི་____ནི་མཐོ་ཤོས་ཡིན།", "options": ["ཇོ་མོ་གླང་མ", "ཐའེ", "ཧྥུ་ཇི", "པ་ལང"], "answer": "ཇོ་མོ་གླང་མ"},
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model, qwen_tokenizer_json):
    """checkpoints/ct-bo-{with,without}/step_{0,100,200}: step 0 is one model in both."""
    from xcult.eval.hf import write_random_qwen2

    d = tmp_path_factory.mktemp("sweep")
    other = write_random_qwen2(d / "m1", qwen_tokenizer_json, hidden=64, heads=2, kv_heads=1, seed=1)
    for setting, late in (("with", other), ("without", tiny_model)):
        root = d / "run" / "checkpoints" / f"ct-bo-{setting}"
        root.mkdir(parents=True)
        for step, model in ((0, tiny_model), (100, late), (200, late)):
            os.symlink(model, root / f"step_{step}")
    (d / "probes").mkdir()
    probes = write_pair(d / "probes", EN, BO)
    cfg = d / "eval.toml"
    cfg.write_text(
        f"""
[experiment]
name = "t"
out_dir = "{d / 'run'}"

[eval]
probes = "{probes}"
cultures = ["bo"]
bootstrap = 500
""",
        encoding="utf-8",
    )
    return cfg


def test_eval_sweep_outputs_resume_and_cli(sweep):
    cfg = load_config(sweep)
    stats = run_eval(cfg, progress=False)
    assert stats["checkpoints_scored"] == 6 and stats["questions_scored"] == 6 * 2 * 4
    out = cfg.out_dir / "eval"
    pred = pl.read_parquet(out / "predictions.parquet")
    assert pred.height == 2 * 3 * 2 * 4
    acc = pl.read_parquet(out / "accuracy.parquet")
    check = pred.group_by("setting", "step", "lang").agg(pl.col("correct").mean().alias("a"))
    joined = acc.join(check, on=["setting", "step", "lang"])
    assert joined.height == acc.height == 12 and (joined["accuracy"] == joined["a"]).all()
    assert acc["rankc"].is_between(0, 1).all()
    transfer = pl.read_parquet(out / "transfer.parquet")
    assert sorted(set(transfer["step"])) == [0, 100, 200]
    assert (transfer.filter(pl.col("step") == 0)["gap"] == 0).all()  # one model in both settings
    assert set(transfer["direction"]) == {"bo->en", "en->bo"}
    assert pl.read_parquet(out / "main_table.parquet").height == 2
    assert set(pl.read_parquet(out / "instances.parquet")["direction"]) == {"bo->en", "en->bo"}
    assert json.loads((out / "validation.json").read_text())[0]["pairs_kept"] == 4
    assert json.loads((out / "stats.json").read_text())["eval"]["metric"] == "mean"

    # Resume: finished checkpoints are skipped; a lost one is redone to the same rows.
    again = run_eval(cfg, progress=False)
    assert again["checkpoints_scored"] == 0 and again["checkpoints_skipped"] == 6
    (out / "items" / "bo-with-step000100.parquet").unlink()
    assert run_eval(cfg, progress=False)["checkpoints_scored"] == 1
    assert pl.read_parquet(out / "predictions.parquet").equals(pred)

    r = CliRunner().invoke(main, ["eval", str(sweep), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "bo->en" in r.output and "0 checkpoints scored, 6 already done" in r.output


def test_retrained_checkpoint_and_changed_probes_are_rescored(sweep, qwen_tokenizer_json, capfd):
    """An items file is reused only for the same checkpoint files, probe files and
    scoring settings: a retrained checkpoint is rescored alone; edited probes rescore all."""
    from xcult.eval.hf import write_random_qwen2

    cfg = load_config(sweep)
    run_eval(cfg, progress=False)
    link = cfg.out_dir / "checkpoints" / "ct-bo-with" / "step_200"
    retrained = write_random_qwen2(sweep.parent / "m2", qwen_tokenizer_json, hidden=64, heads=2, kv_heads=1, seed=2)
    old = link.resolve()
    link.unlink()
    os.symlink(retrained, link)
    try:
        s = run_eval(cfg, progress=False)
        assert (s["checkpoints_scored"], s["checkpoints_rescored"]) == (1, 1)
        assert "rescoring bo-with-step000200.parquet" in capfd.readouterr().err
        assert run_eval(cfg, progress=False)["checkpoints_scored"] == 0
    finally:
        link.unlink()
        os.symlink(old, link)
    probes = load_config(sweep).eval.probes + "/bo-culture-cloze_en.json"
    original = open(probes, encoding="utf-8").read()
    try:
        with open(probes, "w", encoding="utf-8") as f:
            f.write(original.replace("The capital of Tibet", "The capital city of Tibet"))
        assert run_eval(cfg, progress=False)["checkpoints_rescored"] == 6
    finally:
        with open(probes, "w", encoding="utf-8") as f:
            f.write(original)
    assert run_eval(cfg, progress=False)["checkpoints_rescored"] == 6  # back to the old text: rescored again


def test_eval_one_model_from_the_command_line(sweep, tiny_model, tmp_path):
    probes = load_config(sweep).eval.probes
    r = CliRunner().invoke(
        main, ["eval", "--model", str(tiny_model), "--probes", probes, "--cultures", "bo", "--out", str(tmp_path), "--no-progress"]
    )
    assert r.exit_code == 0, r.output
    acc = pl.read_parquet(tmp_path / "accuracy.parquet")
    assert sorted(acc["lang"]) == ["bo", "en"] and (acc["n"] == 4).all()


def test_missing_checkpoints_are_named(sweep, tmp_path):
    text = sweep.read_text().replace('cultures = ["bo"]', 'cultures = ["bo"]\ncheckpoints = "' + str(tmp_path) + '/none-{lang}-{bridges}"')
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    with pytest.raises(MissingPathError, match="none-bo-with"):
        run_eval(load_config(cfg_path), progress=False)

"""`mode = "paper"` against the paper's released evaluation script (`../shared/reference/
paper_main.py`, unchanged), run as a subprocess exactly as released, on the paper's own
zh and bo probes with a random tiny Qwen2: the same option ranking for every item, in
bf16 (the script's only precision), ties included (both keep the first-listed option)."""

from __future__ import annotations

import json
import subprocess
import sys

import accelerate  # noqa: F401 - the script loads with device_map="auto"; a missing one must fail here
import numpy as np
import pytest
from tokenizers import Tokenizer

from tests.conftest import PROBES, ROOT
from xcult.eval.backends import load_model
from xcult.eval.scoring import ClozeScorer
from xcult.probes import load_culture

SCRIPT = ROOT.parent / "shared" / "reference" / "paper_main.py"
QWEN_EOS = 151643


@pytest.mark.parametrize("culture,lang", [("zh", "zh"), ("bo", "en")])
def test_paper_mode_ranks_every_item_as_the_released_script(tmp_path, tiny_model, qwen_tokenizer_json, culture, lang):
    data = PROBES / f"{culture}-culture-cloze_{lang}.json"
    if not SCRIPT.is_file() or not data.is_file():
        pytest.skip("../shared (the paper's script and probes) is absent")
    prefix = tmp_path / "paper"
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--lang", lang, "--model_path", str(tiny_model), "--model_type", "qwen",
         "--data_path", str(data), "--output_prefix", str(prefix)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    theirs = json.loads((tmp_path / f"paper_Rankings_{lang}.json").read_text(encoding="utf-8"))

    items = load_culture(str(PROBES), culture).items(lang)
    model = load_model("hf", tiny_model, "cpu", "auto", mode="paper")
    scored = ClozeScorer(model, Tokenizer.from_file(str(qwen_tokenizer_json)), QWEN_EOS, mode="paper").score(items)
    ours = [[it.options[j] for j in np.argsort(s.scores, kind="stable")] for it, s in zip(items, scored)]
    assert len(theirs) == len(ours) == len(items) > 200
    assert ours == theirs
    assert sum(s.n_tied > 1 for s in scored) > 0  # bf16 ties occur, and are broken the same way

"""The judge: prompts within the model's length, P(yes) from a real model, the cache."""

from __future__ import annotations

import math

import polars as pl
import pytest

from xcult.config import JudgeConfig
from xcult.density.cache import Cache
from xcult.density.judge import judge_pairs
from xcult.density.judges import MatchJudge

STATEMENTS = ["The Vold people eat bread at Marrow Night.", "The Vold people eat bread at Marrow Night.", "Kesh is the capital."]
CHUNKS = ["Every year the Vold people eat bread at  marrow night, and dance.", "Nothing to see.", "x " * 4000]


class CountingJudge(MatchJudge):
    def __init__(self, fail_after: int | None = None):
        self.calls, self.pairs, self.fail_after = 0, 0, fail_after

    def p_yes(self, statements, chunks):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        self.pairs += len(statements)
        return super().p_yes(statements, chunks)


def test_match_judge_ignores_case_and_spacing():
    assert MatchJudge().p_yes(STATEMENTS, CHUNKS) == [1.0, 0.0, 0.0]


def test_cache_resumes_a_killed_run_without_recomputing(tmp_path):
    statements, chunks = STATEMENTS * 4, [c + str(i) for i, c in enumerate(CHUNKS * 4)]
    killed = CountingJudge(fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        judge_pairs(killed, Cache(tmp_path / "c"), statements, chunks, batch_size=5)
    assert len(list((tmp_path / "c").glob("part-*.parquet"))) == 2
    assert not list((tmp_path / "c").glob(".*tmp*"))
    resumed = CountingJudge()
    values, hits = judge_pairs(resumed, Cache(tmp_path / "c"), statements, chunks, batch_size=5)
    assert (hits, resumed.pairs) == (10, 2)
    assert values == MatchJudge().p_yes(statements, chunks)
    again = CountingJudge()
    assert judge_pairs(again, Cache(tmp_path / "c"), statements, chunks, batch_size=5) == (values, 12)
    assert again.calls == 0


def test_duplicate_pairs_are_judged_once(tmp_path):
    j = CountingJudge()
    values, hits = judge_pairs(j, Cache(tmp_path / "c"), STATEMENTS[:1] * 7, CHUNKS[:1] * 7, batch_size=3)
    assert (j.pairs, hits, values) == (1, 0, [1.0] * 7)


def test_cache_key_depends_on_judge_and_texts():
    k = Cache.key({"model": "a"}, "s", "c")
    assert k != Cache.key({"model": "b"}, "s", "c") and k != Cache.key({"model": "a"}, "s", "c2")
    assert k != Cache.key({"model": "a"}, "sc", "") and k == Cache.key({"model": "a"}, "s", "c")


def test_transformers_judge_matches_unbatched_forward(tiny_model):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from xcult.density.judges import TransformersJudge

    cfg = JudgeConfig(backend="transformers", model=str(tiny_model), device="cpu", dtype="fp32", max_model_len=512)
    judge = TransformersJudge(cfg)
    assert judge.prompts.yes_ids and judge.prompts.no_ids and not set(judge.prompts.yes_ids) & set(judge.prompts.no_ids)
    got = judge.p_yes(STATEMENTS, CHUNKS)
    prompts = judge.prompts.build(STATEMENTS, CHUNKS)
    assert len(prompts[2]) <= 511 and prompts[2][-3:] == prompts[0][-3:]  # the long chunk was cut, the question kept
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    for ids, p in zip(prompts, got):
        with torch.inference_mode():
            lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], -1)
        y = sum(math.exp(lp[i]) for i in judge.prompts.yes_ids)
        n = sum(math.exp(lp[i]) for i in judge.prompts.no_ids)
        assert p == pytest.approx(y / (y + n), abs=1e-5)
    assert 0 < min(got) and max(got) < 1 and len(set(got)) == 3


def test_pairs_sharing_a_chunk_run_its_prefix_once_with_equal_answers(tiny_model):
    """Statements retrieved with one chunk continue the KV cache of the prompt up to the
    statement; P(yes) equals the whole prompt's, with prefixes of different lengths
    left-padded into one forward, a group split over several prefixes, and a chunk cut
    to fit the model."""
    from xcult.density.judges import TransformersJudge

    judge = TransformersJudge(JudgeConfig(backend="transformers", model=str(tiny_model), device="cpu", dtype="fp32", max_model_len=512))
    facts = ["The Vold people eat bread at Marrow Night.", "Kesh is the capital.", "Rice is grown in the north.", "They sing at dawn.", "Tea comes last."]
    texts = ["Every year the Vold people eat bread at marrow night, and dance.", "Kesh lies on the river; rice and tea grow north of it, and its people sing at dawn before the market opens.", "x y " * 2000]
    statements = [f for t in texts for f in facts] + ["A fact alone."]
    chunks = [t for t in texts for _ in facts] + ["A chunk alone."]
    batches = []
    original = judge._shared
    judge._shared = lambda encoded, jobs, result: batches.append([(len(m), c) for m, c in jobs]) or original(encoded, jobs, result)
    judge.ROWS_PER_PREFIX = 2  # groups of 5 become 2 + 2 + 1
    got = judge.p_yes(statements, chunks)
    jobs = [job for batch in batches for job in batch]
    assert sorted(n for n, _ in jobs) == [1, 1, 1, 2, 2, 2, 2, 2, 2] and all(c >= 16 for _, c in jobs)
    assert len(batches) == 1 and len({c for _, c in jobs}) == 3  # three prefix lengths, one forward
    judge.share_prefixes = False
    whole = judge.p_yes(statements, chunks)
    assert max(abs(a - b) for a, b in zip(got, whole)) < 1e-5
    assert max(whole) - min(whole) > 1e-3  # the tolerance is far below the answers' spread


def test_a_model_that_transforms_its_logits_is_refused(tiny_model, tmp_path):
    """The judge reads only the yes/no rows of the LM head (the softmax normaliser
    cancels in P(yes)); a cap or scale on the logits would not cancel, so such a model
    is a config error rather than a silently different P(yes)."""
    import json
    import shutil

    from xcult.density.judges import TransformersJudge
    from xcult.errors import ConfigError

    capped = tmp_path / "capped"
    shutil.copytree(tiny_model, capped)
    config = json.loads((capped / "config.json").read_text())
    (capped / "config.json").write_text(json.dumps(config | {"final_logit_softcapping": 30.0}))
    with pytest.raises(ConfigError, match="final_logit_softcapping") as e:
        TransformersJudge(JudgeConfig(backend="transformers", model=str(capped), device="cpu", dtype="fp32", max_model_len=512))
    assert e.value.key == "judge.model"


def test_judge_config_is_checked(tmp_path):
    from xcult.config import load_config
    from xcult.errors import ConfigError

    base = '[experiment]\nname = "x"\n[prep.english]\npaths = ["a"]\n'
    p = tmp_path / "c.toml"
    for extra, key in [
        ('[judge]\nbackend = "vllm"\n', "judge.model"),
        ('[judge]\nbackend = "match"\nprompt = "{chunk}"\n', "judge.prompt"),
        ('[judge]\nbackend = "match"\nthreshold = 1.5\n', "judge.threshold"),
        ('[judge]\nbackend = "match"\n[judge.translate]\nmodel = "m"\nlanguages = ["xx"]\n', "judge.translate.codes"),
    ]:
        p.write_text(base + extra)
        with pytest.raises(ConfigError) as e:
            load_config(p)
        assert e.value.key == key, extra
    p.write_text(base + '[judge]\nbackend = "match"\n')
    assert load_config(p).judge.backend == "match"


def test_cache_parts_are_parquet(tmp_path):
    c = Cache(tmp_path / "c", dtype=pl.Utf8)
    c.add(["k1", "k2"], ["a", "b"])
    assert Cache(tmp_path / "c", dtype=pl.Utf8).values == {"k1": "a", "k2": "b"}

"""xcult's batched scorer against a straightforward one-forward-per-option reference."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
import torch.nn.functional as F  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from tests.conftest import PROBES  # noqa: E402
from xcult.eval.backends import load_model  # noqa: E402
from xcult.eval.scoring import ClozeScorer, _pack, encode  # noqa: E402
from xcult.probes import ProbeItem, load_culture  # noqa: E402

EOS = 151643
CRAFTED = [
    # the blank first: the shared prefix is the EOS alone
    ProbeItem("____ is the capital of Tibet.", ["Lhasa", "Shigatse", "Lhasa City", "Chamdo"], "Lhasa"),
    # options sharing their first tokens, two blanks, CJK, Tibetan
    ProbeItem("They climbed Mount ____ and then Mount ____ again.", ["Tai", "Taishan", "Kailash", "Everest"], "Tai"),
    ProbeItem("汉族先民以西起陇山、东至____的黄河中下游为中心。", ["泰山", "昆仑山", "梅里雪山", "秦岭"], "泰山"),
    ProbeItem("བོད་ཀྱི་རྒྱལ་ས་ནི་____ཡིན།", ["ལྷ་ས", "གཞིས་ཀ་རྩེ", "ཆབ་མདོ", "ནག་ཆུ"], "ལྷ་ས"),
    # the blank last, one option's tokens a prefix of another's: that row has no own
    # token left once its last token (which predicts nothing) is dropped
    ProbeItem("The capital of Tibet is ____", ["Lhasa", "Lhasa City", "Lhasa Town", "Lhasa Valley"], "Lhasa"),
    ProbeItem("A very long question that keeps going on and on, so that batches hold different lengths: ____.", ["x", "y z", "a much longer option text", "q"], "x"),
]


@pytest.fixture(scope="module")
def setup(tiny_model, qwen_tokenizer_json):
    torch.manual_seed(0)
    return load_model("hf", tiny_model, "cpu", "fp32"), Tokenizer.from_file(str(qwen_tokenizer_json))


def items():
    out = list(CRAFTED)
    if (PROBES / "zh-culture-cloze_en.json").exists():
        c = load_culture(str(PROBES), "zh")
        out += c.en[:10] + c.native[:10]
    return out


def reference(model, tok, item, metric="mean"):
    """The paper's loop in fp32: one forward per option over the whole sentence."""
    scores = []
    for k, option in enumerate(item.options):
        e = encode(tok, EOS, item)
        ids = torch.tensor([e.ids[k]])
        logits = model.model(input_ids=ids).logits[0, :-1].float()
        lp = -F.cross_entropy(logits, ids[0, 1:], reduction="none")
        if metric == "mean":
            scores.append(float(-lp.mean()))
        elif metric == "per_char":
            scores.append(float(-lp.sum() / len(item.fill(option))))
        else:
            scores.append(float(-lp[torch.from_numpy(e.answer_mask[k][1:])].sum()))
    return np.array(scores)


@pytest.mark.parametrize("metric", ["mean", "answer_sum", "per_char"])
def test_scores_equal_reference(setup, metric):
    model, tok = setup
    its = items()
    got = ClozeScorer(model, tok, EOS, metric=metric, batch_tokens=2048).score(its)
    with torch.inference_mode():
        for it, g in zip(its, got):
            ref = reference(model, tok, it, metric)
            # fp32 throughout; batching and vocabulary chunking reorder the sums only.
            np.testing.assert_allclose(g.scores, ref, rtol=1e-5, atol=1e-5)
            assert g.prediction == int(np.argmin(ref))


class _Padded:
    """The HF backend without `hidden_states_packed`: every option row runs in full,
    right-padded (the path of a Megatron checkpoint)."""

    def __init__(self, model):
        self.device, self.dtype = model.device, model.dtype
        self.hidden_states, self.output_weight = model.hidden_states, model.output_weight


def test_packing_changes_no_score_and_runs_fewer_tokens(setup, monkeypatch):
    model, tok = setup
    its = items()
    packed_rows, padded_rows = [], []
    original = model.hidden_states_packed
    monkeypatch.setattr(model, "hidden_states_packed", lambda i, p, m: packed_rows.append(i.numel()) or original(i, p, m))
    packed = ClozeScorer(model, tok, EOS, batch_tokens=2048).score(its)
    padded_model = _Padded(model)
    padded_model.hidden_states = lambda ids: padded_rows.append(ids.numel()) or model.hidden_states(ids)
    full = ClozeScorer(padded_model, tok, EOS, batch_tokens=2048).score(its)
    for a, b in zip(packed, full):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
        assert a.prediction == b.prediction
    assert packed_rows and sum(packed_rows) < 0.6 * sum(padded_rows), (sum(packed_rows), sum(padded_rows))


def test_pack_lays_out_each_prefix_once_and_masks_options_apart(setup):
    _, tok = setup
    encs = [encode(tok, EOS, it) for it in items()]
    ids, positions, mask, where = _pack(encs, EOS)
    real = 0
    for e, (row, starts) in zip(encs, where):
        c = e.prefix - 1
        assert ids[row, starts[0] : starts[0] + c].tolist() == e.ids[0][:c]
        for k, seq in enumerate(e.ids):
            at, n = starts[k + 1], len(seq) - 1 - c
            assert ids[row, at : at + n].tolist() == seq[c:-1]
            assert positions[row, at : at + n].tolist() == list(range(c, c + n))
            for j in range(n):
                seen = mask[row, 0, at + j].nonzero().flatten().tolist()
                assert seen == list(range(starts[0], starts[0] + c)) + list(range(at, at + j + 1))
            real += n
        real += c
    # Nothing else in the rows but padding at their ends, which sees itself only.
    padding = ids.shape[0] * ids.shape[1] - real
    assert padding < ids.shape[1] and int(mask.sum()) > real


def test_answer_mask_covers_the_option_only(setup):
    _, tok = setup
    e = encode(tok, EOS, CRAFTED[1])
    for k, option in enumerate(CRAFTED[1].options):
        text = "".join(tok.decode([t]) for t, m in zip(e.ids[k], e.answer_mask[k]) if m)
        assert text.replace(" ", "") == option * 2  # two blanks
    assert e.prefix >= 2  # EOS + "They climbed Mount" is shared


def test_batch_size_does_not_change_scores(setup):
    model, tok = setup
    its = items()
    a = ClozeScorer(model, tok, EOS, batch_tokens=64).score(its)
    b = ClozeScorer(model, tok, EOS, batch_tokens=1 << 16).score(its)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.scores, y.scores, rtol=1e-5, atol=1e-6)


def test_paper_mode_reproduces_bf16_ties(tiny_model, qwen_tokenizer_json):
    """In bf16 the cross-entropy of a random model (~12) is rounded to steps of 1/16, so
    options tie; paper mode keeps that arithmetic and lets the first-listed option win."""
    tok = Tokenizer.from_file(str(qwen_tokenizer_json))
    model = load_model("hf", tiny_model, "cpu", "auto", mode="paper")
    assert model.dtype == torch.bfloat16
    its = items()
    got = ClozeScorer(model, tok, EOS, mode="paper").score(its)
    with torch.inference_mode():
        for it, g in zip(its, got):
            ref = []
            for ids in encode(tok, EOS, it).ids:
                x = torch.tensor([ids])
                ref.append(float(F.cross_entropy(model.model(input_ids=x).logits[0, :-1], x[0, 1:])))
            assert g.scores.tolist() == ref  # bit for bit, bf16 values
            assert all(s == float(torch.tensor(s, dtype=torch.bfloat16)) for s in g.scores)
    tied = sum(g.n_tied > 1 for g in got)
    assert tied > len(its) // 4
    assert all(g.prediction == int(np.flatnonzero(g.scores == g.scores.min())[0]) for g in got)


def test_paper_mode_only_with_the_paper_metric(setup):
    model, tok = setup
    with pytest.raises(ValueError, match="paper"):
        ClozeScorer(model, tok, EOS, metric="per_char", mode="paper")


def test_chunked_logprobs_and_argmax_equal_the_full_softmax():
    """Log-probabilities and the greedy test over vocabulary chunks (the budget forces
    seven chunks) equal those of the whole logit matrix; half the targets are the argmax,
    some of them in later chunks."""
    from xcult.eval.scoring import chunked_logprobs

    g = torch.Generator().manual_seed(0)
    h, w = torch.randn(64, 16, generator=g), torch.randn(7000, 16, generator=g)
    full = h @ w.T
    targets = torch.randint(0, 7000, (64,), generator=g)
    targets[::2] = full.argmax(dim=1)[::2]
    lp, top = chunked_logprobs(h, w, targets, budget=64 * 1024)
    torch.testing.assert_close(lp, torch.log_softmax(full, dim=1)[torch.arange(64), targets], atol=1e-4, rtol=0)
    assert top.tolist() == (full.argmax(dim=1) == targets).tolist()
    assert top.sum() == 32 and (full.argmax(dim=1)[::2] >= 1024).any()

"""Cloze scoring speed against the paper's released loop, same model, same questions, one run:

  paper-bf16     the released script, re-implemented faithfully: bf16 model, one forward
                 per option (grad enabled, as released), full logits, bf16 cross-entropy,
                 stable sort (first-listed option wins ties)
  paper-fp32     the same loop in fp32, grad enabled as released
  paper-nograd   the same fp32 loop under no_grad: the exact reference for xcult's
                 scores, and the anchor that says what batching and prefix reuse buy
                 beyond what no_grad buys
  xcult-padded   `ClozeScorer` with a backend that cannot pack (a Megatron checkpoint's
                 path): right-padded batches, the LM head on the shared prefix once,
                 chunked fp32 log-softmax
  xcult          `ClozeScorer` default on the Hugging Face backend: the same, but the
                 body runs packed rows (each question's shared prefix once, then every
                 option's own tokens, a block mask between them): no padding
  xcult-bf16     `ClozeScorer` on the bf16 model (`eval.dtype = "bf16"`, the GPU default):
                 the body in bf16, log-probabilities in fp32; not exact, so its
                 differing predictions vs paper-nograd are reported, not required 0
  xcult-paper    `ClozeScorer(mode="paper")`: must reproduce paper-bf16 bit for bit

Prints questions/s, the ratios to paper-bf16 and paper-nograd, and differing predictions
(must be 0 for xcult and xcult-padded vs paper-nograd and for xcult-paper vs paper-bf16),
plus ties; then
the matmul FLOPs per question of the loop and of xcult, the rate each achieved, and this
machine's fp32 matmul rate (what bounds exact fp32 scoring).

    python benchmarks/bench_eval.py [--probes ../shared/data/probes] [--culture zh] [--lang en]
        [--shape qwen2.5-0.5b] [--subset 40]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from xcult.eval.backends import load_model
from xcult.eval.hf import random_shape, write_random_qwen2
from xcult.eval.scoring import ClozeScorer, encode
from xcult.presets import PRESETS
from xcult.probes import BLANK, load_culture
from xcult.tokenizer import qwen25_tokenizer

EOS = 151643


def paper_loop(model, tok: Tokenizer, items) -> tuple[list[int], list[int]]:
    """The released script's per-option loop; returns predictions and top-tie counts."""
    preds, ties = [], []
    for it in items:
        prompt = BLANK.sub("<mask>", it.question)
        scores = {}
        for option in it.options:
            ids = [EOS, *tok.encode(prompt.replace("<mask>", option), add_special_tokens=False).ids]
            x = torch.tensor([ids])
            logits = model(input_ids=x).logits[0, :-1]
            scores[option] = float(torch.nn.CrossEntropyLoss(reduction="mean")(logits, x[0, 1:]))
        ranked = sorted(scores.items(), key=lambda kv: kv[1])
        preds.append(it.options.index(ranked[0][0]))
        ties.append(sum(v == ranked[0][1] for v in scores.values()))
    return preds, ties


class Padded:
    """A backend's view without `hidden_states_packed`: the scorer's path for backends
    that cannot pack rows (Megatron checkpoints)."""

    def __init__(self, model):
        self.device, self.dtype = model.device, model.dtype
        self.hidden_states, self.output_weight = model.hidden_states, model.output_weight


def matmul_flops(model, tok: Tokenizer, items) -> tuple[float, float]:
    """Matmul FLOPs per question of the paper's loop (body and LM head on every token of
    every option) and of xcult (body on the shared prefix once and on each option's own
    tokens but its last; LM head where a next token is scored). Attention scores are
    left out (short sentences: a few percent)."""
    body = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "embed" not in n and "lm_head" not in n)
    head = model.config.vocab_size * model.config.hidden_size
    loop = mine = 0
    for it in items:
        e = encode(tok, EOS, it)
        c = e.prefix - 1
        loop += sum(len(ids) for ids in e.ids) * (body + head)
        mine += (c + sum(len(ids) - 1 - c for ids in e.ids)) * body + (c + sum(len(ids) - e.prefix for ids in e.ids)) * head
    return 2 * loop / len(items), 2 * mine / len(items)


def gemm_peak(threads: int) -> float:
    """fp32 GFLOP/s of one large matmul of the body's shape on this machine (best of 3)."""
    a, b = torch.randn(512, 896), torch.randn(896, 4864)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = min(best, (time.perf_counter() - t) / 5)
    return 2 * 512 * 896 * 4864 / best / 1e9


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--probes", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "probes"))
    ap.add_argument("--culture", default="zh")
    ap.add_argument("--lang", default="en", help="question language: en or the culture's")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--shape", choices=sorted(PRESETS), help="a model preset's shape instead of --hidden/--layers (qwen2.5-0.5b: the paper's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--subset", type=int, default=None, help="the first N questions only (a real-size model on CPU)")
    ap.add_argument("--no-paper-mode", action="store_true", help="skip xcult-paper (as slow as paper-bf16 by design)")
    ap.add_argument("--work", default="bench_out/eval")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    tok_path = qwen25_tokenizer(work)
    shape = random_shape(args.hidden, args.layers, args.shape)
    model_dir = work / f"qwen2-random-h{shape['hidden']}-l{shape['layers']}-f{shape['intermediate']}"
    if not (model_dir / "config.json").exists():
        write_random_qwen2(model_dir, tok_path, **shape)
    tok = Tokenizer.from_file(str(tok_path))
    items = load_culture(args.probes, args.culture).items(args.lang)[: args.subset]
    n = len(items)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"{n} {args.culture} questions in {args.lang}, random Qwen2 {args.shape or ''} h={shape['hidden']} L={shape['layers']}, vocab 151,936, {dev}, {args.threads} threads")

    bf16 = load_model("hf", model_dir, dev, "bf16")
    fp32 = load_model("hf", model_dir, dev, "fp32")
    (p_bf16, t_bf16), s_bf16 = timed(lambda: paper_loop(bf16.model, tok, items))
    (p_grad, _), s_grad = timed(lambda: paper_loop(fp32.model, tok, items))
    with torch.no_grad():
        (p_fp32, _), s_fp32 = timed(lambda: paper_loop(fp32.model, tok, items))
    nc, s_nc = timed(lambda: ClozeScorer(Padded(fp32), tok, EOS).score(items))
    xc, s_xc = timed(lambda: ClozeScorer(fp32, tok, EOS).score(items))
    xb, s_xb = timed(lambda: ClozeScorer(bf16, tok, EOS).score(items))
    xp, s_xp = (None, None) if args.no_paper_mode else timed(lambda: ClozeScorer(bf16, tok, EOS, mode="paper").score(items))

    gold = [it.answer_index for it in items]
    rows = [
        ("paper-bf16", s_bf16, p_bf16, t_bf16, None),
        ("paper-fp32", s_grad, p_grad, None, p_fp32),
        ("paper-nograd", s_fp32, p_fp32, None, None),
        ("xcult-padded", s_nc, [r.prediction for r in nc], [r.n_tied for r in nc], p_fp32),
        ("xcult", s_xc, [r.prediction for r in xc], [r.n_tied for r in xc], p_fp32),
        ("xcult-bf16", s_xb, [r.prediction for r in xb], [r.n_tied for r in xb], p_fp32),
    ] + ([] if xp is None else [("xcult-paper", s_xp, [r.prediction for r in xp], [r.n_tied for r in xp], p_bf16)])
    gap = max(float(abs(a.scores - b.scores).max()) for a, b in zip(xc, nc))
    print(f"max |score difference| xcult vs xcult-padded: {gap:.2e}")
    print(f"{'':14} {'q/s':>8} {'vs bf16':>8} {'vs nograd':>9} {'acc':>7} {'tied@top':>9} {'differ':>7}")
    for name, secs, preds, ties, ref in rows:
        acc = np.mean([p == g for p, g in zip(preds, gold)])
        tied = "-" if ties is None else str(sum(t > 1 for t in ties))
        differ = "-" if ref is None else str(sum(a != b for a, b in zip(preds, ref)))
        print(f"{name:14} {n / secs:8.2f} {s_bf16 / secs:7.1f}x {s_fp32 / secs:8.1f}x {acc:7.3f} {tied:>9} {differ:>7}")
    f_loop, f_mine = matmul_flops(fp32.model, tok, items)
    print(
        f"matmul GFLOP per question: paper loop {f_loop / 1e9:.1f}, xcult {f_mine / 1e9:.1f} ({f_loop / f_mine:.2f}x fewer); "
        f"achieved GFLOP/s: paper-nograd {f_loop * n / s_fp32 / 1e9:.0f}, xcult {f_mine * n / s_xc / 1e9:.0f}; "
        f"fp32 matmul peak here {gemm_peak(args.threads):.0f}"
    )
    # How much of bf16 accuracy is tie-breaking toward the first-listed option.
    first = np.mean([g == 0 for g in gold])
    print(f"answer listed first in {first:.0%} of items; paper-bf16 picks option 0 in {np.mean([p == 0 for p in p_bf16]):.0%}")


if __name__ == "__main__":
    main()

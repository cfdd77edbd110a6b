"""Training throughput of `xcult train`: tokens/s per device and MFU, one run.

Builds the bundled sample corpus (`xcult sample-data` + `xcult prep`), pretrains the
chosen preset for a few steps through the real launcher (torchrun, Megatron-Core) and
reads the run's metrics.jsonl. The first `--warmup` steps are left out of the figures.

  GPU:  python benchmarks/bench_train.py --preset qwen2.5-0.5b --seq 2048 --micro 8 --gbs 256
        (MFU against the device's dense bf16 peak; goal >= 40% on one H100)
  CPU:  python benchmarks/bench_train.py --preset tiny --seq 256 --micro 4 --gbs 8
        (no MFU: the figure beside it is achieved model FLOP/s against a measured fp32 GEMM)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from xcult.presets import PRESETS


def xcult(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "xcult.cli", *args], check=True)


def gemm_flops(n: int = 2048, reps: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--gbs", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--work", default="bench_out/train")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    inputs = work / "inputs"
    if not (inputs / "en.jsonl").exists():
        xcult("sample-data", str(inputs), "--scale", "4")
    cfg = work / f"bench-{args.preset}.toml"
    cfg.write_text(
        f"""
[experiment]
name = "bench"
out_dir = "{work / 'run'}"

[prep.english]
paths = ["{inputs / 'en.jsonl'}"]

[train]
model = "{args.preset}"
seq_length = {args.seq}
micro_batch_size = {args.micro}
global_batch_size = {args.gbs}
nproc_per_node = {args.nproc}
log_every = 1
checkpoints = "{work / 'ckpt' / args.preset}-{args.seq}"

[train.pretrain]
steps = {args.steps}
save_every = {args.steps}
warmup_fraction = 0.0
""",
        encoding="utf-8",
    )
    xcult("prep", str(cfg), "--no-progress")
    run = work / "ckpt" / f"{args.preset}-{args.seq}" / "pretrain"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    xcult("train", str(cfg), "--stage", "pretrain")
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()][args.warmup :]
    tps = statistics.median(r["tokens_per_s_per_device"] for r in rows)
    preset = PRESETS[args.preset]
    fpt = preset.flops_per_token(args.seq)
    step_s = statistics.median(r["seconds"] for r in rows)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
    print(f"\n{args.preset} ({preset.parameters() / 1e6:.1f}M parameters), seq {args.seq}, global batch {args.gbs} x {args.seq} tokens, {args.nproc} process(es), {device}")
    print(f"step time (median of {len(rows)}): {step_s:.3f} s; tokens/s per device: {tps:,.0f}; model TFLOP/s per device: {tps * fpt / 1e12:.3f}")
    mfu = [r["mfu"] for r in rows if r["mfu"] is not None]
    if mfu:
        print(f"MFU (dense bf16 peak): {statistics.median(mfu):.1%}; a 0.5M-token step would take {2**19 / (tps * args.nproc):.2f} s on {args.nproc} device(s)")
    else:
        peak = gemm_flops()
        print(f"measured fp32 GEMM on this CPU: {peak / 1e9:.0f} GFLOP/s; training reaches {tps * fpt / peak:.0%} of it")


if __name__ == "__main__":
    main()

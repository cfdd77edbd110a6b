"""One training run (pretraining or continued pretraining) on Megatron-Core.

    torchrun --nproc-per-node N -m training.train --job JOB.json

`xcult train` writes JOB.json (architecture, data, schedule, output) and builds this
command. Top to bottom: distributed setup -> GPTModel -> DDP + Megatron optimizer +
scheduler -> resume (or initialise from the pretrained checkpoint) -> the loop of
forward/backward, optimizer step, logging (`training/watch.py`) and checkpoints -> done.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from training.lifetime import die_with_parent
from training.runtime import init_distributed
from training.watch import RunLog

# Dense bf16 peak per GPU, for MFU (device-name substring -> FLOP/s).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def forward_step(data_iterator, model):
    batch = next(data_iterator)
    output = model(batch["tokens"], batch["position_ids"], None, labels=batch["labels"])
    mask = batch["loss_mask"].view(-1).float()

    def loss_func(per_token):
        loss = (per_token.float().view(-1) * mask).sum() / mask.sum()
        return loss, {"lm loss": loss.detach().clone()}  # the schedule divides `loss` in place

    return output, loss_func


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def write_json(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--job", required=True)
    ap.add_argument("--stop-after", type=int, default=None, help="exit after this step (tests, preemption drills)")
    args = ap.parse_args()
    die_with_parent()  # a worker never outlives torchrun (and torchrun never outlives `xcult train`)
    job = json.loads(Path(args.job).read_text())
    rank, world, device = init_distributed(job["threads"])

    from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
    from megatron.core.distributed.finalize_model_grads import finalize_model_grads
    from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
    from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
    from megatron.core.pipeline_parallel.schedules import get_forward_backward_func
    from megatron.core.tensor_parallel.random import model_parallel_cuda_manual_seed
    from megatron.core.transformer.module import Float16Module

    from training import checkpoint
    from training.data import build_dataset, step_batches
    from training.model import build_model

    out = Path(job["out"])
    bf16, use_te, dist_opt = job["bf16"], job["use_te"], job["distributed_optimizer"]
    seq, micro, gbs, steps = job["seq_length"], job["micro_batch_size"], job["global_batch_size"], job["steps"]
    sched = job["schedule"]

    dataset = build_dataset(job["data_blend"], steps * gbs, seq, job["seed"], job["arch"]["vocab_size"], job["eod"], job["cache_dir"])

    # Model: same seed on every rank, so replicas start identical.
    torch.manual_seed(job["seed"])
    model_parallel_cuda_manual_seed(job["seed"])
    module = build_model(job["arch"], seq, bf16, use_te).to(device)
    if sched["trainable"] != "all":  # before DDP and the optimizer, which skip frozen parameters
        for name, p in module.named_parameters():
            mlp = sched["trainable"] == "embeddings_mlp" and ".mlp." in name
            p.requires_grad = name.startswith(("embedding.", "output_layer.")) or mlp
    if bf16:
        module = Float16Module(module.config, module)
    ddp_config = DistributedDataParallelConfig(grad_reduce_in_fp32=True, use_distributed_optimizer=dist_opt)
    model = DistributedDataParallel(config=module.config, ddp_config=ddp_config, module=module)
    optimizer = get_megatron_optimizer(
        OptimizerConfig(
            optimizer="adam",
            lr=sched["lr"],
            min_lr=sched["min_lr"],
            weight_decay=sched["weight_decay"],
            adam_beta1=sched["adam_beta1"],
            adam_beta2=sched["adam_beta2"],
            clip_grad=sched["clip_grad"],
            bf16=bf16,
            params_dtype=torch.bfloat16 if bf16 else torch.float32,
            use_distributed_optimizer=dist_opt,
        ),
        [model],
    )
    warmup = int(sched["warmup_fraction"] * steps)
    scheduler = OptimizerParamScheduler(
        optimizer,
        init_lr=0.0 if warmup else sched["lr"],
        max_lr=sched["lr"],
        min_lr=sched["min_lr"] if sched["decay"] != "constant" else sched["lr"],
        lr_warmup_steps=warmup,
        lr_decay_steps=steps,
        lr_decay_style=sched["decay"],
        start_wd=sched["weight_decay"],
        end_wd=sched["weight_decay"],
        wd_incr_steps=steps,
        wd_incr_style="constant",
    )

    # Resume from the newest checkpoint of this run, else start (CT: from the pretrained model).
    root = out
    found = checkpoint.latest(root)
    if found is not None:
        start = checkpoint.load(found[1], model, optimizer, scheduler)
    else:
        start = 0
        if job["init_from"]:
            checkpoint.load(Path(job["init_from"]), model)
        checkpoint.save(root, 0, model, optimizer, scheduler)  # step 0: the curve's first point

    log = RunLog(job, start) if rank == 0 else None

    forward_backward = get_forward_backward_func()
    tokens_per_step = gbs * seq
    flops_per_token, peak = job["flops_per_token"], peak_flops(device)
    t_run = time.perf_counter()
    for step in range(start, steps):
        t0 = time.perf_counter()
        model.zero_grad_buffer()
        optimizer.zero_grad()
        losses = forward_backward(
            forward_step_func=forward_step,
            data_iterator=step_batches(dataset, step, gbs, micro, rank, world, device),
            model=[model],
            num_microbatches=gbs // (micro * world),
            seq_length=seq,
            micro_batch_size=micro,
            forward_only=False,
        )
        finalize_model_grads([model])
        ok, grad_norm, _ = optimizer.step()
        scheduler.step(1)
        loss = torch.stack([x["lm loss"] for x in losses]).mean()
        torch.distributed.all_reduce(loss)
        loss = float(loss) / world
        if not math.isfinite(loss):
            raise FloatingPointError(f"step {step + 1}: loss is {loss}")
        done = step + 1
        seconds = time.perf_counter() - t0
        tps = tokens_per_step / seconds / world
        record = {
            "step": done,
            "loss": loss,
            "lr": optimizer.param_groups[0]["lr"],
            "grad_norm": None if grad_norm is None else float(grad_norm),
            "seconds": seconds,
            "tokens_per_s_per_device": tps,
            "mfu": None if peak is None else tps * flops_per_token / peak,
        }
        if log is not None:
            log.log(record)
            if done % job["log_every"] == 0 or done == steps:
                extra = "" if record["mfu"] is None else f" mfu {record['mfu']:.1%}"
                extra += "" if record["grad_norm"] is None else f" grad {record['grad_norm']:.3f}"
                print(f"[{job['name']}] step {done}/{steps} loss {loss:.4f} lr {record['lr']:.2e} tok/s/dev {tps:,.0f}{extra}", flush=True)
        if done % sched["save_every"] == 0 or done == steps:
            checkpoint.save(root, done, model, optimizer, scheduler)
        if args.stop_after is not None and done >= args.stop_after:
            break
    else:
        # Data-parallel replicas must hold identical weights: each rank's checksum goes in done.json.
        checksum = torch.tensor([float(sum(p.detach().double().sum() for p in model.parameters()))], dtype=torch.float64, device=device)
        sums = [torch.zeros_like(checksum) for _ in range(world)]
        torch.distributed.all_gather(sums, checksum)
        if rank == 0:
            write_json(
                out / "done.json",
                {
                    "steps": steps,
                    "tokens": steps * tokens_per_step,
                    "seconds_this_launch": time.perf_counter() - t_run,
                    "replica_checksums": [float(x) for x in sums],
                },
            )
    if log is not None:
        log.close()
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()

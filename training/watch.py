"""What rank 0 records of a run as it trains: metrics.jsonl (one line per step), TensorBoard
events and, when the job names a project, Weights & Biases. A resumed run first drops what
a killed launch logged past the checkpoint it resumes from, so every curve is continuous."""

from __future__ import annotations

import json
import os
from pathlib import Path

# metrics.jsonl keys -> TensorBoard / W&B tags
TAGS = {
    "loss": "train/loss",
    "lr": "train/lr",
    "grad_norm": "train/grad_norm",
    "tokens_per_s_per_device": "train/tokens_per_s_per_device",
    "mfu": "train/mfu",
}


class RunLog:
    def __init__(self, job: dict, start: int):
        out = Path(job["out"])
        self.metrics = out / "metrics.jsonl"
        kept = [l for l in self.metrics.read_text().splitlines() if json.loads(l)["step"] <= start] if self.metrics.exists() else []
        tmp = self.metrics.with_name(".metrics.jsonl.tmp")
        tmp.write_text("".join(l + "\n" for l in kept))
        os.replace(tmp, self.metrics)

        from torch.utils.tensorboard import SummaryWriter

        # purge_step: TensorBoard hides events an earlier launch wrote past `start`.
        self.tb = SummaryWriter(log_dir=job["tensorboard"], purge_step=start + 1, flush_secs=10)
        self.wandb = None
        if job.get("wandb"):
            import wandb

            w = job["wandb"]
            self.wandb = wandb.init(
                project=w["project"],
                entity=w["entity"] or None,
                name=f"{job['experiment']}/{job['name']}",
                id=w["id"],  # one W&B run per xcult run, continued across launches
                resume="allow",
                dir=str(out),
                config={k: job[k] for k in ("stage", "arch", "seq_length", "global_batch_size", "steps", "schedule", "seed", "bf16", "use_te")},
            )

    def log(self, record: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
        values = {tag: record[k] for k, tag in TAGS.items() if record.get(k) is not None}
        for tag, value in values.items():
            self.tb.add_scalar(tag, value, record["step"])
        if self.wandb is not None:
            self.wandb.log(values, step=record["step"])

    def close(self) -> None:
        self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()

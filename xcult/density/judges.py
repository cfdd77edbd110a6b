"""The judge backends: does a chunk state a fact? `VllmJudge` (vLLM's offline engine;
GPU default, tensor parallel for large judges), `TransformersJudge` (a transformers model,
batched, any device) and `MatchJudge` (exact match, for synthetic worlds). LLM judges read
the next-token probabilities of the yes and no words: P(yes) = p(yes) / (p(yes) + p(no)).
Only what a backend needs is imported here (no Parquet), so the judge runs alone on a
machine that has torch and transformers (or vLLM) and little else."""

from __future__ import annotations

import math
from typing import Protocol

from xcult.config import JudgeConfig
from xcult.errors import ConfigError


class Judge(Protocol):
    def identity(self) -> dict: ...

    def p_yes(self, statements: list[str], chunks: list[str]) -> list[float]: ...


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


# Sentence-final punctuation of the five scripts, dropped from a statement before matching.
_FINAL = ".!?。！？།༎᠃ "


class MatchJudge:
    """Entailed (1.0) when the chunk contains the statement verbatim, up to whitespace,
    case and final punctuation: the ground truth for worlds whose facts are planted as
    whole sentences."""

    def identity(self) -> dict:
        return {"backend": "match"}

    def p_yes(self, statements: list[str], chunks: list[str]) -> list[float]:
        return [float(_normalize(s).rstrip(_FINAL) in _normalize(c)) for s, c in zip(statements, chunks)]


class Prompts:
    """Renders (statement, chunk) pairs to token ids within the model's length, cutting
    the chunk (never the instruction or the statement) when a prompt is too long."""

    def __init__(self, tokenizer, cfg: JudgeConfig, max_len: int):
        self.tok, self.cfg, self.max_len = tokenizer, cfg, max_len
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if cfg.chat_template == "on" and not has_template:
            raise ConfigError(f"judge.chat_template: the tokenizer of {cfg.model} has no chat template", "judge.chat_template")
        self.chat = cfg.chat_template == "on" or (cfg.chat_template == "auto" and has_template)
        self.yes_ids, self.no_ids = self._word_ids(cfg.yes), self._word_ids(cfg.no)
        if set(self.yes_ids) & set(self.no_ids):
            raise ConfigError(f"judge.yes/judge.no: {cfg.yes!r} and {cfg.no!r} share a first token", "judge.yes")

    def identity(self) -> dict:
        """What decides an LLM judge's answer besides the texts (the cache key). Both LLM
        backends share it: the same model and prompt give the same P(yes) up to dtype."""
        c = self.cfg
        return {
            "backend": "llm",
            "model": c.model,
            "prompt": c.prompt,
            "yes": c.yes,
            "no": c.no,
            "chat": self.chat,
            "max_chunk_chars": c.max_chunk_chars,
            "max_len": self.max_len,
        }

    def _word_ids(self, word: str) -> list[int]:
        """First tokens of the word's spellings ("yes", " yes", "Yes", " Yes")."""
        ids = []
        for form in {word, " " + word, word.capitalize(), " " + word.capitalize()}:
            t = self.tok.encode(form, add_special_tokens=False)
            if t and t[0] not in ids:
                ids.append(t[0])
        return ids

    def _text(self, statement: str, chunk: str) -> str:
        text = self.cfg.prompt.replace("{statement}", statement).replace("{chunk}", chunk)
        if self.chat:
            text = self.tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        return text

    def build(self, statements: list[str], chunks: list[str]) -> list[list[int]]:
        limit = self.cfg.max_chunk_chars
        chunks = [c[:limit] for c in chunks]
        # One batch call: the fast tokenizer encodes the prompts in parallel.
        out = self.tok([self._text(s, c) for s, c in zip(statements, chunks)], add_special_tokens=False)["input_ids"]
        for i, ids in enumerate(out):
            over = len(ids) - (self.max_len - 1)
            if over > 0:
                chunk_ids = self.tok.encode(chunks[i], add_special_tokens=False)
                c = self.tok.decode(chunk_ids[: max(0, len(chunk_ids) - over - 8)])
                out[i] = self.tok.encode(self._text(statements[i], c), add_special_tokens=False)[-(self.max_len - 1) :]
        return [list(ids) for ids in out]

    def p_yes(self, logprob_of) -> float:
        """P(yes) from a token id -> log-probability lookup (None when not returned)."""

        def mass(ids):
            return sum(math.exp(lp) for lp in (logprob_of(i) for i in ids) if lp is not None)

        y, n = mass(self.yes_ids), mass(self.no_ids)
        return y / (y + n) if y + n > 0 else 0.5


VLLM_DTYPES = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class VllmJudge:
    """vLLM's offline engine. Sampling is restricted to the yes/no tokens and logprobs are
    the processed ones, so both words' log-probabilities come back for every prompt."""

    def __init__(self, cfg: JudgeConfig):
        from vllm import LLM, SamplingParams

        kwargs = dict(
            model=cfg.model,
            tensor_parallel_size=cfg.tensor_parallel_size,
            dtype=VLLM_DTYPES[cfg.dtype],
            seed=0,
            logprobs_mode="processed_logprobs",
            enable_prefix_caching=True,
        )
        if cfg.max_model_len is not None:
            kwargs["max_model_len"] = cfg.max_model_len
        if cfg.device != "cpu":
            kwargs["gpu_memory_utilization"] = cfg.gpu_memory_utilization
        self.llm = LLM(**kwargs)
        self.cfg = cfg
        max_len = self.llm.llm_engine.model_config.max_model_len
        self.prompts = Prompts(self.llm.get_tokenizer(), cfg, max_len)
        ids = self.prompts.yes_ids + self.prompts.no_ids
        self.params = SamplingParams(max_tokens=1, temperature=1.0, allowed_token_ids=ids, logprobs=len(ids))

    def identity(self) -> dict:
        return self.prompts.identity()

    def close(self) -> None:
        """Stops the engine's processes now rather than at interpreter exit."""
        self.llm.llm_engine.engine_core.shutdown()

    def p_yes(self, statements: list[str], chunks: list[str]) -> list[float]:
        prompts = [{"prompt_token_ids": ids} for ids in self.prompts.build(statements, chunks)]
        outs = self.llm.generate(prompts, self.params, use_tqdm=False)
        result = []
        for o in outs:
            lps = o.outputs[0].logprobs[0]
            result.append(self.prompts.p_yes(lambda i: lps[i].logprob if i in lps else None))
        return result


class TransformersJudge:
    """A transformers causal LM. Pairs that share a chunk share their prompt up to the
    statement (instruction first, then the chunk): that prefix runs once and its KV
    cache is continued by each statement (`xcult/kv_cache.py`); the other prompts go
    in left-padded batches. Either way P(yes) comes from the last position's yes/no logits.
    `share_prefixes = False` sends every prompt whole (what tests and the benchmark
    compare the shared path against)."""

    TOKENS_PER_FORWARD = 16384
    ROWS_PER_PREFIX = 64  # a chunk shared by more statements runs its prefix again per 64
    MIN_SHARED = 16  # a shorter common prefix is not worth a forward of its own

    def __init__(self, cfg: JudgeConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from xcult.devices import resolve_device, resolve_dtype

        self.torch, self.cfg = torch, cfg
        self.device = resolve_device(cfg.device)
        dtype = resolve_dtype(cfg.dtype, self.device, "xcult")
        self.model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtype).to(self.device).eval()
        tok = AutoTokenizer.from_pretrained(cfg.model)
        max_len = cfg.max_model_len or getattr(self.model.config, "max_position_embeddings", 4096)
        self.prompts = Prompts(tok, cfg, max_len)
        self.pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        self.ids = self.prompts.yes_ids + self.prompts.no_ids
        for name in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
            if getattr(self.model.config, name, None) not in (None, 1, 1.0):
                raise ConfigError(f"judge.model: {cfg.model} transforms its logits ({name}); the transformers judge reads the LM head directly — use judge.backend = \"vllm\"", "judge.model")
        head = self.model.get_output_embeddings()
        self.head_weight = head.weight[self.ids].detach()
        self.head_bias = None if getattr(head, "bias", None) is None else head.bias[self.ids].detach()
        self.share_prefixes = True

    def identity(self) -> dict:
        return self.prompts.identity()

    def p_yes(self, statements: list[str], chunks: list[str]) -> list[float]:
        encoded = self.prompts.build(statements, chunks)
        result = [0.0] * len(encoded)
        alone, jobs = [], []
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            groups.setdefault(c, []).append(i)
        for members in groups.values():
            common = _common_prefix([encoded[i] for i in members]) if len(members) > 1 and self.share_prefixes else 0
            if common < self.MIN_SHARED:
                alone += members
                continue
            for start in range(0, len(members), self.ROWS_PER_PREFIX):
                jobs.append((members[start : start + self.ROWS_PER_PREFIX], common))
        jobs.sort(key=lambda job: job[1])
        with self.torch.inference_mode():
            batch: list = []
            for job in jobs:
                if batch and not self._fits(encoded, batch + [job]):
                    self._shared(encoded, batch, result)
                    batch = []
                batch.append(job)
            if batch:
                self._shared(encoded, batch, result)
            self._batched(encoded, alone, result)
        return result

    def _fits(self, encoded: list[list[int]], jobs: list) -> bool:
        """Prefix tokens and suffix rows x (prefix + suffix) within the budget."""
        width = max(c for _, c in jobs)
        rows = [len(encoded[i]) - c for members, c in jobs for i in members]
        return len(jobs) * width <= self.TOKENS_PER_FORWARD and len(rows) * (width + max(rows)) <= 4 * self.TOKENS_PER_FORWARD

    def _read(self, h, members: list[int], result: list[float]) -> None:
        """P(yes) from last-position hidden states `h` [R, d]. P(yes) = y / (y + n) over
        the yes/no ids, so the softmax's normaliser over the vocabulary cancels: only
        those ids' rows of the LM head are computed (8 of ~152k for Qwen)."""
        logits = self.torch.nn.functional.linear(h, self.head_weight, self.head_bias)
        lp = self.torch.log_softmax(logits.float(), -1).cpu().tolist()
        for r, i in enumerate(members):
            result[i] = self.prompts.p_yes(dict(zip(self.ids, lp[r])).get)

    def _shared(self, encoded: list[list[int]], jobs: list, result: list[float]) -> None:
        """One forward of the jobs' shared prefixes (left-padded), then every statement
        continuing its prefix's cache (right-padded)."""
        from xcult.kv_cache import continue_prefix, left_padded, run_prefix

        torch, body, dev = self.torch, self.model.base_model, self.device
        prefix, pmask = left_padded([encoded[members[0]][:c] for members, c in jobs], self.pad)
        _, cache = run_prefix(body, prefix.to(dev), pmask.to(dev))
        flat = [(g, i, c) for g, (members, c) in enumerate(jobs) for i in members]
        lens = [len(encoded[i]) - c for _, i, c in flat]
        suffix = torch.full((len(flat), max(lens)), self.pad, dtype=torch.long)
        smask = torch.zeros_like(suffix)
        for r, (_, i, c) in enumerate(flat):
            suffix[r, : lens[r]] = torch.tensor(encoded[i][c:])
            smask[r, : lens[r]] = 1
        rows = torch.tensor([g for g, _, _ in flat])
        mask = torch.cat([pmask[rows], smask], 1)
        start = [c for _, _, c in flat]
        h = continue_prefix(body, cache, start, rows.to(dev), suffix.to(dev), mask.to(dev))
        at = torch.tensor(lens, device=dev) - 1
        self._read(h[torch.arange(len(flat), device=dev), at], [i for _, i, _ in flat], result)

    def _batched(self, encoded: list[list[int]], members: list[int], result: list[float]) -> None:
        """Left-padded whole prompts, shortest first, `TOKENS_PER_FORWARD` per forward."""
        from xcult.kv_cache import left_padded

        order = sorted(members, key=lambda i: len(encoded[i]))
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and len(encoded[order[end]]) * (end - start + 1) <= self.TOKENS_PER_FORWARD:
                end += 1
            ids, mask = left_padded([encoded[i] for i in order[start:end]], self.pad)
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            h = self.model.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device), use_cache=False).last_hidden_state
            self._read(h[:, -1], order[start:end], result)
            start = end


def _common_prefix(rows: list[list[int]]) -> int:
    """Length of the ids every row starts with, leaving each row at least one own id."""
    first, n = rows[0], min(len(r) for r in rows) - 1
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == first[k]:
            k += 1
        n = k
    return n


def make_judge(cfg: JudgeConfig) -> Judge:
    if cfg.backend == "match":
        return MatchJudge()
    if cfg.backend == "vllm":
        return VllmJudge(cfg)
    return TransformersJudge(cfg)

"""`xcult judge`: does a retrieved chunk entail the probe's fact?

Every (statement, chunk) pair of `index/retrieval.parquet` goes to one judge backend:
vLLM's offline engine (GPU default; tensor parallel for 70B judges), a transformers
model, or an exact-match rule for synthetic worlds. LLM judges read the next-token
probabilities of the yes and no words: P(yes) = p(yes) / (p(yes) + p(no)). Answers are
cached by a hash of the judge's identity and the pair's text, in Parquet parts written
atomically, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Protocol

import polars as pl

from xcult import layout
from xcult.config import JudgeConfig, RunConfig
from xcult.density.cache import Cache
from xcult.density.index import index_job
from xcult.errors import ConfigError, MissingPathError
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.stage import StageReport


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
        out = []
        for s, c in zip(statements, chunks):
            c = c[:limit]
            ids = self.tok.encode(self._text(s, c), add_special_tokens=False)
            over = len(ids) - (self.max_len - 1)
            if over > 0:
                chunk_ids = self.tok.encode(c, add_special_tokens=False)
                c = self.tok.decode(chunk_ids[: max(0, len(chunk_ids) - over - 8)])
                ids = self.tok.encode(self._text(s, c), add_special_tokens=False)[-(self.max_len - 1) :]
            out.append(ids)
        return out

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
    """A transformers causal LM: one left-padded forward per batch, last-position logits."""

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

    def identity(self) -> dict:
        return self.prompts.identity()

    def p_yes(self, statements: list[str], chunks: list[str]) -> list[float]:
        torch = self.torch
        encoded = self.prompts.build(statements, chunks)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        result = [0.0] * len(encoded)
        budget = 16384  # tokens per forward
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and len(encoded[order[end]]) * (end - start + 1) <= budget:
                end += 1
            batch = [encoded[i] for i in order[start:end]]
            width = max(len(b) for b in batch)
            ids = torch.full((len(batch), width), self.pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, b in enumerate(batch):
                ids[r, width - len(b) :] = torch.tensor(b)
                mask[r, width - len(b) :] = 1
            positions = (mask.cumsum(1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids.to(self.device), attention_mask=mask.to(self.device), position_ids=positions.to(self.device), logits_to_keep=1
                ).logits[:, -1].float()
            lp = torch.log_softmax(logits, -1)[:, self.ids].cpu().tolist()
            for r, i in enumerate(order[start:end]):
                row = dict(zip(self.ids, lp[r]))
                result[i] = self.prompts.p_yes(row.get)
            start = end
        return result


def make_judge(cfg: JudgeConfig) -> Judge:
    if cfg.backend == "match":
        return MatchJudge()
    if cfg.backend == "vllm":
        return VllmJudge(cfg)
    return TransformersJudge(cfg)


def judge_pairs(judge: Judge, cache: Cache, statements: list[str], chunks: list[str], batch_size: int, progress=None) -> tuple[list[float], int]:
    """P(yes) for every pair; returns the values and how many came from the cache."""
    identity = judge.identity()
    keys = [Cache.key(identity, s, c) for s, c in zip(statements, chunks)]
    hits = sum(1 for k in keys if k in cache.values)
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k not in cache.values:
            first.setdefault(k, i)
    todo = list(first.values())
    per_key = Counter(keys)
    if progress is not None and hits:
        progress(hits)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        values = judge.p_yes([statements[i] for i in batch], [chunks[i] for i in batch])
        cache.add([keys[i] for i in batch], values)
        if progress is not None:
            progress(sum(per_key[keys[i]] for i in batch))
    return [cache.values[k] for k in keys], hits


def _texts(cfg: RunConfig, retrieval: pl.DataFrame) -> pl.DataFrame:
    """The retrieval rows with their statement and chunk text."""
    from xcult.probes import load_culture

    e = cfg.eval
    rows = []
    for name in retrieval["culture"].unique(maintain_order=True):
        culture = load_culture(e.probes, name, e.lang(name), e.on_invalid)
        for lang in ("en", culture.lang):
            for item, it in zip(culture.index, culture.items(lang)):
                rows.append((name, lang, item, it.statement()))
    statements = pl.DataFrame(rows, schema={"culture": pl.Utf8, "lang": pl.Utf8, "item": pl.Int64, "statement": pl.Utf8}, orient="row")
    texts = []
    for corpus in retrieval["corpus"].unique(maintain_order=True):
        ids = retrieval.filter(pl.col("corpus") == corpus)["chunk_id"].unique()
        files = index_job(layout.of(cfg).index_dir(corpus))["chunks"]
        t = pl.scan_parquet(files).filter(pl.col("chunk_id").is_in(ids.implode())).select("chunk_id", "text").collect()
        texts.append(t.with_columns(corpus=pl.lit(corpus)))
    out = retrieval.join(statements, on=["culture", "lang", "item"], how="left").join(pl.concat(texts), on=["corpus", "chunk_id"], how="left")
    missing = out.filter(pl.col("statement").is_null() | pl.col("text").is_null())
    if not missing.is_empty():
        r = missing.row(0, named=True)
        raise MissingPathError(
            f"retrieval.parquet row (culture {r['culture']}, lang {r['lang']}, item {r['item']}, chunk {r['chunk_id']}) "
            "has no probe or chunk text: the probes or chunks changed since `xcult index`; rerun it with --force",
            str(layout.of(cfg).retrieval),
        )
    return out


def run_judge(cfg: RunConfig, progress: bool = True) -> dict:
    """Judges every retrieved (statement, chunk) pair → judge/judgments.parquet."""
    from rich.progress import Progress

    if cfg.eval is None or cfg.judge is None:
        missing = "eval" if cfg.eval is None else "judge"
        raise ConfigError(f"{cfg.path} has no [{missing}] section: the judge needs probes and a judge", missing)
    lay = layout.of(cfg)
    retrieval_path = lay.retrieval
    if not retrieval_path.is_file():
        raise MissingPathError(f"{retrieval_path} does not exist: run `xcult index {cfg.path}` first", str(retrieval_path))
    out_dir = lay.judge
    ensure_writable(out_dir)
    t0 = time.perf_counter()
    pairs = _texts(cfg, pl.read_parquet(retrieval_path))
    statements, chunks = pairs["statement"].to_list(), pairs["text"].to_list()
    translated = 0
    if cfg.judge.translate is not None:
        from xcult.density.translate import translate_pairs

        statements, chunks, translated = translate_pairs(cfg.judge.translate, pairs["lang"].to_list(), statements, chunks, out_dir / "translations")
    judge = make_judge(cfg.judge)
    cache = Cache(out_dir / "cache")
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("judging", total=len(statements))
        p, hits = judge_pairs(judge, cache, statements, chunks, cfg.judge.batch_size, lambda n: bar.advance(task, n))
    table = pairs.drop("statement", "text").with_columns(p_yes=pl.Series(p, dtype=pl.Float64)).with_columns(
        entailed=pl.col("p_yes") >= cfg.judge.threshold
    )
    write_parquet_atomic(lay.judgments, table)
    seconds = time.perf_counter() - t0
    stats = {
        "pairs": len(table),
        "cached": hits,
        "judged": len(table) - hits,
        "translated": translated,
        "entailed": int(table["entailed"].sum()),
        "seconds": round(seconds, 3),
        "pairs_per_second": round((len(table) - hits) / seconds, 2) if seconds > 0 else None,
        "identity": judge.identity(),
    }
    write_json_atomic(out_dir / "config.json", cfg.to_dict())
    write_json_atomic(out_dir / "stats.json", stats)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    """Judged pairs are cached by content, so the stage is current when nothing was
    left to judge."""
    s = run_judge(cfg, progress=progress)
    summary = f"{cfg.judge.backend} judge: {s['pairs']:,} pairs, {s['cached']:,} cached, {s['entailed']:,} entailed"
    return StageReport(summary, built=[f"{s['judged']:,} pairs"] if s["judged"] else [], current=[] if s["judged"] else ["judgments"])

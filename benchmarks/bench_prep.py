"""Throughput of `xcult prep`'s engine against the anchors of the corpus-engine issue,
on generated corpora that resemble real text (`benchmarks/corpora.py`: Zipf characters
and words, punctuation every 5-30 characters) in English, Chinese, Korean and Tibetan,
plus uniform random Chinese (the worst case for pre-token caches), in one run:

  xcult      the Rust engine: read, script-filter, tokenize, shuffle, .bin/.idx, chunks
  megatron   a faithful re-implementation of Megatron-LM's tools/preprocess_data.py:
             HF tokenizers from Python, multiprocessing pool of 2 workers, .bin/.idx out
  datatrove  JsonlReader + MegatronDocumentTokenizer, 2 tasks
  encode     raw `tokenizers` encode_batch (2 threads): the reference tokenizer's limit
  verify     (untimed) xcult's tokenizer equals HF `tokenizers` on every document
  regex      a plain-Python script filter (`regex`, \\p{Script=...})
  filter     xcult's script filter alone, one thread

plus peak RSS of the engine on a 50 MB and a 500 MB English input, each generated on its
own (not one input repeated, which would be the best case for the caches).

    python benchmarks/bench_prep.py [--en-mb 200] [--mb 50] [--langs en,zh,zh-uniform,ko,bo] [--work bench_out]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import regex
from tokenizers import Tokenizer

from benchmarks.corpora import generate, keep_script
from xcult import _core
from xcult.tokenizer import qwen25_tokenizer

EOD = "<|endoftext|>"


def mb_of(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


# The engine's pool memory budget here: prep.pool_memory_mb's default, 1 GiB.
POOL_MEMORY = 1 << 30


def engine_job(paths: list[Path], lang: str, tok: Path, out: Path, pool_memory: int = POOL_MEMORY) -> dict:
    return {
        "name": lang,
        "language": lang,
        "source": {"paths": [str(p) for p in paths], "format": {"format": "jsonl", "text_field": "text"}},
        "filter": {"keep_scripts": [keep_script(lang)], "min_chars": 1},
        "budget_tokens": None,
        "engine": {
            "tokenizer": {"path": str(tok), "eod": EOD, "implementation": "auto"},
            "seed": 1, "chunk_chars": 5000, "on_error": "error", "batch_bytes": 16 << 20,
            "pool_memory_bytes": pool_memory, "threads": 2, "progress": False,
        },
        "out_dir": str(out),
    }


def run_xcult(paths, lang, tok, out, pool_memory: int = POOL_MEMORY):
    stats = json.loads(_core.prep_monolingual(json.dumps(engine_job(paths, lang, tok, out, pool_memory))))
    return stats["outputs"][0]["tokens"]


# --- Megatron-LM tools/preprocess_data.py, re-implemented faithfully -------------
class _Encoder:
    def initializer(self, tok_path):
        _Encoder.tokenizer = Tokenizer.from_file(tok_path)
        _Encoder.eod = _Encoder.tokenizer.token_to_id(EOD)

    def encode(self, json_line):
        text = json.loads(json_line)["text"]
        ids = _Encoder.tokenizer.encode(text, add_special_tokens=False).ids
        ids.append(_Encoder.eod)
        return ids, len(json_line)


def run_megatron(paths, tok, out, workers=2):
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    encoder = _Encoder()
    vocab = Tokenizer.from_file(str(tok)).get_vocab_size(with_added_tokens=True)
    builder = IndexedDatasetBuilder(f"{out}.bin", dtype=DType.optimal_dtype(vocab))
    tokens = 0
    with mp.Pool(workers, initializer=encoder.initializer, initargs=(str(tok),)) as pool:
        for p in paths:
            with open(p, encoding="utf-8") as fin:
                for ids, _ in pool.imap(encoder.encode, fin, 32):
                    builder.add_document(np.array(ids, dtype=np.int64), [len(ids)])
                    tokens += len(ids)
    builder.finalize(f"{out}.idx")
    return tokens


def run_datatrove(paths, tok, out):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import MegatronDocumentTokenizer

    folder = paths[0].parent
    stem = paths[0].name.rsplit("-", 1)[0]
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(folder), glob_pattern=f"{stem}-*.jsonl"),
            MegatronDocumentTokenizer(str(out), tokenizer_name_or_path=str(tok), eos_token=EOD),
        ],
        tasks=2, workers=2, logging_dir=str(out / "logs"), skip_completed=False,
    ).run()
    return None


def run_encode(paths, tok):
    t = Tokenizer.from_file(str(tok))
    n = 0
    for p in paths:
        texts = [json.loads(line)["text"] for line in open(p, encoding="utf-8")]
        for i in range(0, len(texts), 1000):
            n += sum(len(e.ids) + 1 for e in t.encode_batch(texts[i : i + 1000], add_special_tokens=False))
    return n


def verify_ids(paths, tok) -> tuple[int, int]:
    """xcult's tokenizer (the fast path) against HF `tokenizers` on every document of the
    corpus: the ids must be identical. Returns (documents, tokens) compared."""
    hf = Tokenizer.from_file(str(tok))
    docs = tokens = 0
    for p in paths:
        texts = [json.loads(line)["text"] for line in open(p, encoding="utf-8")]
        for i in range(0, len(texts), 20000):
            batch = texts[i : i + 20000]
            fast, used_fast = _core.encode_texts(str(tok), EOD, batch)
            assert used_fast, "the fast path did not apply"
            for k, (got, want) in enumerate(zip(fast, (e.ids for e in hf.encode_batch(batch, add_special_tokens=False)), strict=True)):
                if got != want:
                    raise SystemExit(f"{p}:{i + k + 1}: xcult's ids differ from HF tokenizers'")
                tokens += len(got)
            docs += len(batch)
    return docs, tokens


def run_regex(paths, lang):
    keep = rf"\p{{Script={keep_script(lang)}}}\p{{Script=Common}}\p{{Script=Inherited}}"
    drop = regex.compile(f"[^{keep}]+")
    space = regex.compile(r"\s{2,}")
    for p in paths:
        for line in open(p, encoding="utf-8"):
            space.sub(" ", drop.sub("", json.loads(line)["text"]))


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def rss_child(paths, lang, tok, out, pool_memory: int) -> int:
    """Peak RSS (MB) of a fresh process running the engine with this pool memory budget:
    its VmHWM, not ru_maxrss, which a child forked from this (large) process inherits
    across exec."""
    code = (
        "import json,sys; from xcult import _core; from benchmarks.bench_prep import engine_job; "
        "from pathlib import Path; a=json.loads(sys.argv[1]); "
        "_core.prep_monolingual(json.dumps(engine_job([Path(p) for p in a['p']], a['l'], a['t'], a['o'], a['m']))); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))"
    )
    arg = json.dumps({"p": [str(p) for p in paths], "l": lang, "t": str(tok), "o": str(out), "m": pool_memory})
    res = subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    return int(res.stdout.strip()) // 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--en-mb", type=int, default=200)
    ap.add_argument("--mb", type=int, default=50, help="MB of each non-English corpus")
    ap.add_argument("--langs", default="en,zh,zh-uniform,ko,bo")
    ap.add_argument("--work", type=Path, default=Path("bench_out"))
    ap.add_argument("--skip", default="", help="comma-separated: spill,megatron,datatrove,encode,verify,regex,rss")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    tok = qwen25_tokenizer(work / "tok")
    langs = args.langs.split(",")
    corpora = {lang: generate(work / f"zipf-{lang}", args.en_mb if lang == "en" else args.mb, lang, 1 + i) for i, lang in enumerate(langs)}
    rows = []
    for lang, paths in corpora.items():
        mb = mb_of(paths)
        out = work / f"xcult-{lang}"
        shutil.rmtree(out, ignore_errors=True)
        secs, tokens = timed(run_xcult, paths, lang, tok, out)
        rows.append((lang, "xcult prep", mb, secs, tokens))
        print(f"{lang}: xcult prep {mb / secs:.1f} MB/s", flush=True)
        if "spill" not in skip:
            shutil.rmtree(out, ignore_errors=True)
            s, n = timed(run_xcult, paths, lang, tok, out, 0)
            rows.append((lang, "xcult prep, pools spilled to files", mb, s, n))
        if "encode" not in skip:
            s, n = timed(run_encode, paths, tok)
            rows.append((lang, "tokenizers encode_batch", mb, s, n))
        if "megatron" not in skip:
            s, n = timed(run_megatron, paths, tok, work / f"megatron-{lang}")
            rows.append((lang, "megatron preprocess_data (2 workers)", mb, s, n))
        if "datatrove" not in skip:
            dt = work / f"datatrove-{lang}"
            shutil.rmtree(dt, ignore_errors=True)
            s, _ = timed(run_datatrove, paths, tok, dt)
            rows.append((lang, "datatrove MegatronDocumentTokenizer (2 tasks)", mb, s, None))
        if "verify" not in skip:
            docs, n = verify_ids(paths, tok)
            print(f"{lang}: ids identical to HF tokenizers on all {docs:,} documents ({n:,} tokens)", flush=True)
        if "regex" not in skip:
            s, _ = timed(run_regex, paths, lang)
            rows.append((lang, "python regex script filter", mb, s, None))
        joined = work / f"{lang}-all.txt"
        with open(joined, "w", encoding="utf-8") as f:
            for p in paths:
                for line in open(p, encoding="utf-8"):
                    f.write(json.loads(line)["text"] + "\n")
        t = _core.time_script_filter(str(joined), [keep_script(lang)])
        rows.append((lang, "xcult script filter (1 thread)", t["bytes_in"] / 1e6, t["seconds"], None))
    print(f"\n{'lang':10} {'pipeline':46} {'MB':>6} {'s':>7} {'MB/s':>7} {'Mtok/s':>6} {'xcult is':>8}")
    base = {lang: next(r for r in rows if r[0] == lang and r[1] == "xcult prep") for lang in corpora}
    for lang, name, mb, secs, tokens in rows:
        ratio = "" if name.startswith("xcult") or name.startswith("python") else f"{secs / base[lang][3]:.1f}x"
        mtok = f"{tokens / secs / 1e6:.2f}" if tokens else ""
        print(f"{lang:10} {name:46} {mb:6.1f} {secs:7.2f} {mb / secs:7.1f} {mtok:>6} {ratio:>8}")
    if "rss" not in skip:
        # Two inputs generated on their own: the 500 MB one is not the 50 MB one repeated.
        inputs = {mb: generate(work / f"rss-{mb}", mb, "en", mb) for mb in (50, 500)}
        print("\npeak RSS of the engine (English, generated inputs):")
        for pool, label in [(POOL_MEMORY, "pools in memory up to 1 GiB"), (0, "pools spilled to files")]:
            rss = [rss_child(inputs[mb], "en", tok, work / f"rss{mb}", pool) for mb in (50, 500)]
            print(f"  {label}: {rss[0]} MB on 50 MB; {rss[1]} MB on 500 MB")


if __name__ == "__main__":
    main()

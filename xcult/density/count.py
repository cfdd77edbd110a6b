"""`xcult count`: exact occurrence counts beside BM25 + judge, with infini-gram.

One datastore per indexed corpus under `<out_dir>/count/<corpus>/`: the corpus's
documents as raw UTF-8 bytes (Rust writes infini-gram's `tokenized.0`/`offset.0` from
the same chunk files the index reads) and infini-gram's suffix array over them
(`table.0`, built by its own indexer in a child process). Byte-level means every
string counts exactly, in every script, whatever a tokenizer would do at its edges.

Per probe (culture, question language) in its language's corpus, `counts.parquet`:
- `exact_answer`: occurrences of the answer string, with the spaces around the blank
  where the question has them (a space-delimited answer counts as a word);
- `exact_statement`: occurrences of the filled question (the statement);
- `exact_answer_entity`: occurrences of the answer with the entity in the same document
  within `count.window` bytes (infini-gram lists the rarer one's occurrences, Rust
  scans the bytes around each for the other), where the entity
  is the question's rarest word (by its exact count, with its delimiting spaces; Han
  and Tibetan runs also offer character bigrams and syllable pairs) that occurs at all;
- `approx`: a string occurred more than MAX_POSITIONS times and its list was subsampled.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl

from xcult import _core, completion, layout
from xcult.config import RunConfig
from xcult.density.index import corpora as index_corpora
from xcult.density.index import corpus_job
from xcult.errors import EngineFailed, MissingPathError
from xcult.io import ensure_writable, replace_dir, write_json_atomic, write_parquet_atomic
from xcult.layout import probe_file
from xcult.probes import BLANK
from xcult.stage import StageReport, parts

# Byte-level datastore: ids are bytes; 0xFF separates documents (never in UTF-8), so the
# engine's vocabulary is the 255 other bytes and its EOS a byte text never holds (NUL).
VOCAB, EOS = 255, 0
FORMAT = "infini-gram u8 v4"
# infini-gram's builder overlaps its parallel parts by 100 kB: small datastores get one part.
BYTES_PER_PART = 16 << 20
# Occurrences listed per string for the window test; more are subsampled (marked approx).
MAX_POSITIONS = 1_000_000


def datastore_job(cfg: RunConfig, corpus: str, out_dir: Path, check: bool = True) -> dict:
    """The Rust DatastoreJob of one corpus: the chunks the corpus's index reads."""
    job = corpus_job(cfg, corpus, out_dir, check)
    return {"chunks": job["chunks"], "keep_languages": job["keep_languages"], "out_dir": str(out_dir)}


def _fingerprint(cfg: RunConfig, corpus: str) -> tuple[dict, list[Path]]:
    job = datastore_job(cfg, corpus, layout.of(cfg).count_dir(corpus))
    return {"format": FORMAT, "keep_languages": job["keep_languages"]}, [Path(c) for c in job["chunks"]]


def datastore_status(cfg: RunConfig, corpus: str) -> completion.Status:
    final = layout.of(cfg).count_dir(corpus)
    if not final.exists():
        return completion.Status("missing")
    st = completion.status(final, *_fingerprint(cfg, corpus))
    return completion.Status("stale", "table.0 is missing") if st and not (final / "table.0").is_file() else st


def suffix_array(d: Path, nbytes: int, threads: int, mem_gb: int) -> dict:
    """infini-gram's suffix array (`table.0`) over the datastore `tokenized.0` in `d`. Its
    indexer's step 1 (tokenizing JSONL in Python) finds tokenized.0/offset.0 and is
    skipped; it changes directory and open-file limits, so it runs as its own process."""
    t0 = time.perf_counter()
    d = d.resolve()  # the indexer changes directory
    cpus = max(1, min(threads or os.cpu_count() or 1, nbytes // BYTES_PER_PART))
    (d / "no_jsonl").mkdir(exist_ok=True)
    cmd = [
        sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(d / "no_jsonl"), "--save_dir", str(d),
        "--token_dtype", "u8", "--cpus", str(cpus), "--mem", str(mem_gb),
        "--ulimit", str(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0 or not (d / "table.0").is_file() or "went wrong" in p.stdout:
        (d / "indexing.log").write_text(p.stdout + p.stderr)
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        raise EngineFailed(f"infini-gram indexing of {d} failed (exit {p.returncode}): {' / '.join(tail)}; log: {d / 'indexing.log'}", str(d))
    (d / "no_jsonl").rmdir()
    return {"suffix_array_seconds": round(time.perf_counter() - t0, 3), "processes": cpus}


def build_datastore(cfg: RunConfig, corpus: str) -> dict:
    """Writes the corpus's byte datastore and suffix array into a temporary directory,
    then renames it into place; returns its stats."""
    final = layout.of(cfg).count_dir(corpus)
    tmp = final.with_name(f".{corpus}.tmp")  # the run lock is held: a failed build's leftover is cleared next time
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rec = completion.record(*_fingerprint(cfg, corpus))
    job = datastore_job(cfg, corpus, tmp)
    stats = json.loads(_core.write_datastore(json.dumps(job)))
    stats |= suffix_array(tmp, stats["bytes"], cfg.count.threads, cfg.count.mem_gb)
    write_json_atomic(tmp / "job.json", job | {"out_dir": str(final)})
    write_json_atomic(tmp / "stats.json", stats)
    completion.write(tmp, rec)
    replace_dir(tmp, final)
    return stats


class Datastore:
    """An open byte-level infini-gram index: exact counts of UTF-8 strings."""

    def __init__(self, path: Path):
        from infini_gram.engine import InfiniGramEngine

        if not (path / "table.0").is_file():
            raise MissingPathError(f"{path} holds no infini-gram index (no table.0): run `xcult count`", str(path))
        self.engine = InfiniGramEngine(index_dir=str(path), eos_token_id=EOS, vocab_size=VOCAB, token_dtype="u8", version=4)
        self.bytes = _core.ByteDatastore(str(path))

    def count(self, text: str) -> tuple[int, bool]:
        if not text:
            return 0, False
        r = self.engine.count(list(text.encode("utf-8")))
        return int(r["count"]), bool(r["approx"])

    def positions(self, text: str) -> tuple[np.ndarray, bool]:
        """Sorted byte offsets of every occurrence (a subsample past MAX_POSITIONS: approx)."""
        r = self.engine.find_cnf([[list(text.encode("utf-8"))]], max_clause_freq=MAX_POSITIONS, max_diff_tokens=1)
        ptrs = np.sort(np.array(r["ptrs_by_shard"][0] if r["ptrs_by_shard"] else [], dtype=np.uint64))
        return ptrs, bool(r["approx"])

    def count_near(self, a: str, b: str, window: int) -> tuple[int, bool]:
        """Occurrences of `a` with an occurrence of `b` in the same document whose start
        is at most `window` bytes from its own, before or after. The occurrences of the
        rarer string are listed (infini-gram) and the bytes around each scanned for the
        other (Rust). (infini-gram's own `count_cnf` merges each match with the nearest
        other-clause match on both sides and drops the pair when that span crosses a
        document boundary, so it misses pairs beside a document edge.)"""
        if not a or not b:
            return 0, False
        (na, _), (nb, _) = self.count(a), self.count(b)
        if na == 0 or nb == 0:
            return 0, False
        answers_rarer = na <= nb
        anchors, approx = self.positions(a if answers_rarer else b)
        other = (b if answers_rarer else a).encode("utf-8")
        return self.bytes.count_near(anchors.tolist(), other, window, answers_rarer), approx

    def documents(self) -> int:
        return int(self.engine.get_total_doc_cnt())


TSHEG = "\u0f0b"  # Tibetan syllable delimiter: inside a word, not between words


def _is_han(c: str) -> bool:
    return "CJK UNIFIED" in unicodedata.name(c, "")


def _delimited(text: str, start: int, end: int, core: str) -> str:
    """`core` with the whitespace that delimits text[start:end] in `text` (a space-
    delimited word is counted as a word, not inside longer ones)."""
    before = " " if start > 0 and text[start - 1].isspace() else ""
    after = " " if end < len(text) and text[end].isspace() else ""
    return before + core + after


def words(question: str) -> list[str]:
    """Candidate entity strings of a question: its runs of letters, marks and digits (a
    Tibetan run keeps its tshegs) of two characters or more or between spaces, with the
    spaces that delimit them in the question; and, for scripts without spaces between words, the
    sub-strings a name is likely to be: the character bigrams of Han runs, the syllable
    pairs of Tibetan runs."""
    text = BLANK.sub("\0", question)  # the blank separates words but is no space
    out, start = [], None
    for i, c in enumerate(text + " "):
        if unicodedata.category(c)[0] in "LMN" or (c == TSHEG and start is not None):
            start = i if start is None else start
            continue
        if start is not None:
            w = text[start:i].rstrip(TSHEG)
            d = _delimited(text, start, start + len(w), w)
            if len(w) >= 2 or d == f" {w} ":  # one character only as a word of its own
                out.append(d)
                if any(map(_is_han, w)):
                    out += [w[k : k + 2] for k in range(len(w) - 1)]
                syllables = [x for x in w.split(TSHEG) if x]
                if len(syllables) > 2:
                    out += [TSHEG.join(syllables[k : k + 2]) for k in range(len(syllables) - 1)]
        start = None
    return list(dict.fromkeys(out))


def answer_query(question: str, answer: str) -> str:
    """The answer as it stands in the question's (first) blank, with its delimiting spaces."""
    m = BLANK.search(question)
    return _delimited(question, m.start(), m.end(), answer) if m else answer


def entity(ds: Datastore, question: str) -> tuple[str, int]:
    """The question's entity and its count: the rarest candidate word that occurs in the
    corpus (longest on ties). A space-delimited word of the question that never occurs
    is the entity itself, with count 0 (a name the corpus lacks; falling back to the
    next-rarest word would pair the answer with a common word instead)."""
    counted = [(ds.count(w)[0], -len(w), w) for w in words(question)]
    absent = [w for n, _, w in counted if n == 0 and w != w.strip()]
    if absent:
        return absent[0], 0
    found = [c for c in counted if c[0] > 0]
    if not found:
        return "", 0
    n, _, w = min(found)
    return w, n


def count_probes(cfg: RunConfig) -> pl.DataFrame:
    from xcult.probes import load_culture

    e, window = cfg.eval, cfg.count.window
    lay = layout.of(cfg)
    stores: dict[str, Datastore] = {}
    rows = []
    for name in e.cultures:
        culture = load_culture(e.probes, name, e.lang(name), e.on_invalid)
        for lang in ("en", culture.lang):
            if lang not in index_corpora(cfg):
                continue
            ds = stores.setdefault(lang, Datastore(lay.count_dir(lang)))
            for item, it in zip(culture.index, culture.items(lang)):
                ent, ent_n = entity(ds, it.question)
                query = answer_query(it.question, it.answer)
                answer, a_approx = ds.count(query)
                statement, s_approx = ds.count(it.statement())
                near, n_approx = ds.count_near(query, ent, window)
                rows.append(
                    {
                        "culture": name, "lang": lang, "corpus": lang, "item": item,
                        "exact_answer": answer, "exact_statement": statement, "exact_answer_entity": near,
                        "entity": ent, "entity_count": ent_n, "approx": a_approx or s_approx or n_approx,
                    }
                )
    return pl.DataFrame(rows, schema_overrides={"item": pl.Int64})


def _counts_fingerprint(cfg: RunConfig) -> tuple[dict, list[Path]]:
    """The counts depend on the window, the probe files and every datastore (its record)."""
    e, lay = cfg.eval, layout.of(cfg)
    probes = [probe_file(e.probes, c, lang) for c in e.cultures for lang in ("en", e.lang(c))]
    inputs = [Path(p) for p in probes if "://" not in p] + [lay.count_dir(c) / completion.RECORD for c in index_corpora(cfg)]
    settings = {"window": cfg.count.window, "on_invalid": e.on_invalid, "cultures": e.cultures, "remote_probes": [p for p in probes if "://" in p]}
    return settings, inputs


def _counts_record(cfg: RunConfig) -> Path:
    return layout.of(cfg).counts.with_suffix(".completion.json")


def counts_status(cfg: RunConfig) -> completion.Status:
    lay = layout.of(cfg)
    if not lay.counts.is_file():
        return completion.Status("missing")
    return completion.status(lay.counts, *_counts_fingerprint(cfg), _counts_record(cfg))


def run_count(cfg: RunConfig, force: bool = False) -> dict:
    """Builds missing or stale datastores, then counts every probe unless the counts are
    current; returns the stats."""
    lay = layout.of(cfg)
    ensure_writable(lay.count)
    built = {}
    for corpus in index_corpora(cfg):
        st = datastore_status(cfg, corpus)
        if st and not force:
            continue
        if st.state == "stale":
            print(f"count {corpus}: {st.reason} — rebuilding", file=sys.stderr, flush=True)
        built[corpus] = build_datastore(cfg, corpus)
    if counts_status(cfg) and not force and not built:
        return json.loads((lay.count / "stats.json").read_text()) | {"built_now": []}
    t0 = time.perf_counter()
    rec = completion.record(*_counts_fingerprint(cfg))
    table = count_probes(cfg)
    write_parquet_atomic(lay.counts, table)
    completion.write(lay.counts, rec, _counts_record(cfg))
    stats = {
        "datastores": {c: json.loads((lay.count_dir(c) / "stats.json").read_text()) for c in index_corpora(cfg)},
        "built_now": sorted(built),
        "probes": table.height,
        "query_seconds": round(time.perf_counter() - t0, 3),
        "approximate": int(table["approx"].sum()),
    }
    write_json_atomic(lay.count / "config.json", cfg.to_dict())
    write_json_atomic(lay.count / "stats.json", stats)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    before = {corpus: datastore_status(cfg, corpus) for corpus in index_corpora(cfg)}
    counts_before = counts_status(cfg)
    s = run_count(cfg)
    report: dict[str, list[str]] = {"built": [], "rebuilt": [], "current": []}
    for name, st in [*before.items(), ("counts", counts_before)]:
        for k, v in parts(name, st).items():
            report[k] += v
    sizes = ", ".join(f"{c}: {d['documents']:,} documents, {d['bytes'] / 1e6:.1f} MB" for c, d in s["datastores"].items())
    return StageReport(f"{s['probes']} probe counts; {sizes}", **report)

"""The probe model: bilingual cloze questions in the paper's format.

A culture is two JSON files aligned by index, `<culture>-culture-cloze_en.json` and
`<culture>-culture-cloze_<lang>.json`, each a list of `{question, options, answer}` with
the blank a run of underscores, under a directory or a URL base; or the rows of one
table with `culture` and `lang` columns beside those three (a Hugging Face dataset,
`hf://datasets/ORG/NAME[@REVISION]`, or a Parquet/JSON(L) file), aligned by `item`
where the table has it, else by row order. Loading validates every item and applies
one stated policy to the problems it finds: raise, or skip the pair and record why.

Remote files are fetched once into the user cache (pooch: retried, and the paper's
files at the pinned commit checked against their SHA-256), so stages that reload
probes read the cached copy.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xcult.errors import ConfigError, InputError, MissingPathError
from xcult.layout import is_probe_table, probe_file, user_cache

BLANK = re.compile(r"_+")

# The paper's probes (github.com/luciusssss/cross-lingual-culture), pinned to the commit
# that added them, with each file's SHA-256 there.
PAPER_PROBES = "https://raw.githubusercontent.com/luciusssss/cross-lingual-culture/177e9cd6c49dc54b7ebb73a66c84f9889957ef60/data"
PAPER_SHA256 = {
    "bo-culture-cloze_bo.json": "33f03c3ac0e089c225e894c1cc5c702c53affef16431cef0eacb5f7a7595baa4",
    "bo-culture-cloze_en.json": "0d1dfc7292cf1ff2787e1493ac5391c51e679bc30263ca5648c16c40097dc54e",
    "ko-culture-cloze_en.json": "7f4046381492669dea6383a81ac7164082496ccb0084fdc40c8f6743f33f2ac3",
    "ko-culture-cloze_ko.json": "53e1206260945608601234ef7215e10ad70729abcbf460187eee1ea16db8d852",
    "mn-culture-cloze_en.json": "ff4c579350713dfdf8856f637b2b585bc76ad1ccf538010f98d5c2518fbb44ca",
    "mn-culture-cloze_mn.json": "86d3bda6bfcc0bfa63e6b4fc7bd8f21d7f6e716b8dfef1c8bcebc50e20a3d43d",
    "zh-culture-cloze_en.json": "d412961a4e08fbda5817381ab836b94cd089ab6fd95efb997f66c2585ea74fd6",
    "zh-culture-cloze_zh.json": "bc484d965b00abffb3fb8b93b79cbc117f39493c9c18469375fe52a6f4125892",
}
TABLE_COLUMNS = ("culture", "lang", "question", "options", "answer")


@dataclass(frozen=True)
class ProbeItem:
    question: str
    options: list[str]
    answer: str

    @property
    def answer_index(self) -> int:
        return self.options.index(self.answer)

    def fill(self, option: str) -> str:
        """The question with every blank replaced by `option`, as the paper's script does."""
        return BLANK.sub(lambda _: option, self.question)

    def statement(self) -> str:
        return self.fill(self.answer)


@dataclass(frozen=True)
class Problem:
    file: str
    index: int  # 0-based item index in the file
    line: int  # 1-based line where the item starts
    kind: Literal["no_blank", "answer_not_in_options", "duplicate_options", "option_count_mismatch"]
    detail: str


@dataclass
class Culture:
    """The aligned probe pairs of one culture; `index[i]` is the pair's position in the files."""

    name: str
    lang: str
    en: list[ProbeItem]
    native: list[ProbeItem]
    index: list[int]
    files: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    # Kept pairs whose answer is a different option index in each language: valid, but
    # RankC and per-option comparisons assume the options line up by index.
    answer_index_mismatch: list[int] = field(default_factory=list)

    def items(self, lang: str) -> list[ProbeItem]:
        return self.en if lang == "en" else self.native

    def report(self) -> dict:
        """Counts and lists every problem found; what `skip` dropped is exactly these pairs."""
        return {
            "culture": self.name,
            "files": self.files,
            "pairs_kept": len(self.index),
            "pairs_skipped": len({p.index for p in self.problems}),
            "counts": dict(Counter(p.kind for p in self.problems)),
            "problems": [vars(p) for p in self.problems],
            "answer_index_mismatch": {"count": len(self.answer_index_mismatch), "items": self.answer_index_mismatch},
        }

    def warnings(self) -> list[str]:
        """One line per thing a user should know before trusting this culture's numbers."""
        n = len(self.answer_index_mismatch)
        if not n:
            return []
        first = ", ".join(map(str, self.answer_index_mismatch[:5])) + (" ..." if n > 5 else "")
        return [
            f"{self.files[self.lang]}: {n} of {len(self.index)} items have their answer at a different option index than in "
            f"{self.files['en']} (items {first}); RankC and option-wise comparisons for them are not meaningful"
        ]


def fetch(url: str) -> Path:
    """A remote probe file, downloaded once into the user cache (3 retries); a file of
    the pinned paper commit must have its known SHA-256."""
    import pooch
    import requests

    base, name = url.rsplit("/", 1)
    known = PAPER_SHA256.get(name) if base == PAPER_PROBES else None
    cache = user_cache() / "probes" / hashlib.sha256(base.encode()).hexdigest()[:16]
    source = pooch.create(path=cache, base_url=base + "/", registry={name: known}, retry_if_failed=3)
    try:
        return Path(source.fetch(name, progressbar=False))
    except ValueError as e:  # pooch: the download's hash is not the known one
        raise InputError(f"{url}: {e}", url) from None
    except (requests.RequestException, OSError) as e:
        raise MissingPathError(f"{url}: could not download ({e})", url) from None


def _read_text(location: str) -> str:
    if location.startswith(("http://", "https://")):
        location = str(fetch(location))
    p = Path(location)
    if not p.is_file():
        raise MissingPathError(f"probe file {p} does not exist", str(p))
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        raise InputError(f"{p}:{line}: invalid UTF-8 ({e.reason})", str(p), line) from None


def _json_list(text: str, location: str) -> list[tuple[object, int]]:
    """The elements of a top-level JSON list, each with the line it starts on."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    try:
        pos = ws.match(text, 0).end()
        if text[pos : pos + 1] != "[":
            raise InputError(f"{location}:{text.count(chr(10), 0, pos) + 1}: expected a JSON list of questions", location, 1)
        pos = ws.match(text, pos + 1).end()
        out: list[tuple[object, int]] = []
        while text[pos : pos + 1] != "]":
            if out:
                if text[pos : pos + 1] != ",":
                    raise json.JSONDecodeError("expected ',' or ']'", text, pos)
                pos = ws.match(text, pos + 1).end()
            value, end = decoder.raw_decode(text, pos)
            out.append((value, text.count("\n", 0, pos) + 1))
            pos = ws.match(text, end).end()
        if text[ws.match(text, pos + 1).end() :]:
            raise json.JSONDecodeError("extra data after the list", text, pos + 1)
        return out
    except json.JSONDecodeError as e:
        raise InputError(f"{location}:{e.lineno}: invalid JSON ({e.msg})", location, e.lineno) from None


def _item(r: object, i: int, line: int, location: str) -> ProbeItem:
    """One question record, checked; a malformed one is an InputError naming the place."""
    if isinstance(r, dict) and isinstance(r.get("answer"), list):
        # The paper's script accepts a list of gold answers (right when all are in the
        # top len(list)); one answer per item is what the paired statistics need.
        if len(r["answer"]) != 1:
            raise InputError(
                f"{location}:{line}: item {i} has {len(r['answer'])} answers {r['answer']!r:.120}; xcult scores one answer per item "
                "(a one-element list is read as that answer)",
                location,
                line,
            )
        r = r | {"answer": r["answer"][0]}
    ok = (
        isinstance(r, dict)
        and isinstance(r.get("question"), str)
        and isinstance(r.get("options"), list)
        and all(isinstance(o, str) for o in r["options"])
        and len(r["options"]) >= 2
        and isinstance(r.get("answer"), str)
    )
    if not ok:
        raise InputError(
            f"{location}:{line}: item {i} must be {{question: str, options: [str, str, ...], answer: str}}, got {r!r:.200}",
            location,
            line,
        )
    return ProbeItem(r["question"], list(r["options"]), r["answer"])


def read_probe_file(location: str) -> list[tuple[ProbeItem, int]]:
    """Parses one file into (item, line) pairs; malformed JSON or a malformed item is an
    InputError naming the file and line."""
    return [(_item(r, i, line, location), line) for i, (r, line) in enumerate(_json_list(_read_text(location), location))]


@functools.lru_cache(maxsize=8)
def _table(source: str, stamp: tuple) -> list[dict]:
    """A probe table's rows, each with its 1-based row number (`_row`); `stamp` keys the
    cache to a local file's size and mtime."""
    import polars as pl

    if source.startswith("hf://datasets/"):
        try:
            import datasets
        except ImportError:
            raise ConfigError(f"eval.probes = {source!r} needs the `datasets` package: pip install 'xcult[hf]'", "eval.probes") from None
        name, _, revision = source.removeprefix("hf://datasets/").partition("@")
        frame = pl.from_arrow(datasets.load_dataset(name, revision=revision or None, split="train").data.table)
    else:
        path = Path(source)
        if not path.is_file():
            raise MissingPathError(f"probe table {path} does not exist", str(path))
        try:
            frame = pl.read_parquet(path) if source.endswith(".parquet") else pl.read_ndjson(path) if source.endswith(".jsonl") else pl.read_json(path)
        except (pl.exceptions.PolarsError, OSError) as e:
            raise InputError(f"{source}: not a probe table ({e})", source) from None
    missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: a probe table needs the columns {', '.join(TABLE_COLUMNS)} (missing {', '.join(missing)})", source)
    return [r | {"_row": n} for n, r in enumerate(frame.iter_rows(named=True), 1)]


def read_probe_table(source: str, culture: str, lang: str) -> list[tuple[ProbeItem, int]]:
    """One culture's questions in one language from a probe table, as (item, row) pairs,
    ordered by `item` where the table has it."""
    path = Path(source)
    stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path.is_file() else ()
    rows = [r for r in _table(source, stamp) if r["culture"] == culture and r["lang"] == lang]
    if rows and "item" in rows[0]:
        rows.sort(key=lambda r: r["item"])
    return [(_item({k: r[k] for k in ("question", "options", "answer")}, i, r["_row"], source), r["_row"]) for i, r in enumerate(rows)]


def _item_problems(file: str, i: int, line: int, item: ProbeItem) -> list[Problem]:
    out = []
    if not BLANK.search(item.question):
        out.append(Problem(file, i, line, "no_blank", f"no run of underscores in {item.question!r:.120}"))
    if item.answer not in item.options:
        out.append(Problem(file, i, line, "answer_not_in_options", f"answer {item.answer!r} not in {item.options!r}"))
    dups = [o for o, n in Counter(item.options).items() if n > 1]
    if dups:
        out.append(Problem(file, i, line, "duplicate_options", f"repeated {dups!r}"))
    return out


def load_culture(source: str, culture: str, lang: str | None = None, on_invalid: Literal["error", "skip"] = "error") -> Culture:
    """Loads and validates one culture's aligned English/native pair of files.

    Files of unequal length cannot be aligned and always raise. Item problems raise
    under `error`; under `skip` the pair is dropped and recorded in `problems`.
    """
    lang = lang or culture
    files = {"en": probe_file(source, culture, "en"), lang: probe_file(source, culture, lang)}
    if is_probe_table(source):
        en, native = read_probe_table(source, culture, "en"), read_probe_table(source, culture, lang)
    else:
        en, native = read_probe_file(files["en"]), read_probe_file(files[lang])
    if len(en) != len(native):
        raise InputError(
            f"misaligned probe files: {files['en']} has {len(en)} questions, {files[lang]} has {len(native)}",
            files[lang],
            None,
        )
    problems: list[Problem] = []
    for i, ((e, el), (n, nl)) in enumerate(zip(en, native)):
        problems += _item_problems(files["en"], i, el, e) + _item_problems(files[lang], i, nl, n)
        if len(e.options) != len(n.options):
            problems.append(
                Problem(files[lang], i, nl, "option_count_mismatch", f"{len(e.options)} English options, {len(n.options)} native")
            )
    if problems and on_invalid == "error":
        p = problems[0]
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise InputError(f"{p.file}:{p.line}: item {p.index}: {p.kind}: {p.detail}{more}", p.file, p.line)
    bad = {p.index for p in problems}
    keep = [i for i in range(len(en)) if i not in bad]
    if not keep:
        why = f"all {len(en)} were dropped by on_invalid = \"skip\"" if en else "the files hold none"
        raise InputError(f"{files['en']} and {files[lang]}: no usable probe items ({why})", files["en"], None)
    mismatch = [i for i in keep if en[i][0].answer_index != native[i][0].answer_index]
    return Culture(culture, lang, [en[i][0] for i in keep], [native[i][0] for i in keep], keep, files, problems, mismatch)

"""The probe model: bilingual cloze questions in the paper's format.

A culture is two JSON files aligned by index, `<culture>-culture-cloze_en.json` and
`<culture>-culture-cloze_<lang>.json`, each a list of `{question, options, answer}` with
the blank a run of underscores. Loading validates every item and applies one stated
policy to the problems it finds: raise, or skip the pair and record why.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from xcult.errors import InputError, MissingPathError
from xcult.layout import probe_file

BLANK = re.compile(r"_+")


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


def _read_text(location: str) -> str:
    if location.startswith(("http://", "https://")):
        with urllib.request.urlopen(location, timeout=60) as r:
            return r.read().decode("utf-8")
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


def read_probe_file(location: str) -> list[tuple[ProbeItem, int]]:
    """Parses one file into (item, line) pairs; malformed JSON or a malformed item is an
    InputError naming the file and line."""
    items = []
    for i, (r, line) in enumerate(_json_list(_read_text(location), location)):
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
        items.append((ProbeItem(r["question"], list(r["options"]), r["answer"]), line))
    return items


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

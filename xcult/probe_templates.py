"""`xcult probes from-templates` (the paper's appendix D): multiple-choice cloze probes
from a table of people and per-language sentence templates.

The TSV has a header; a column `attr@lang` holds that attribute in one language
(`birthplace@zh`), a plain column `attr` serves every language (`birth_date`). The
templates file (TOML) has one table per language mapping a target attribute to a
sentence naming fields in braces: `birthplace = "{name} was born in {birthplace}."`.
Each (person, target attribute) becomes one item per language: the target replaced by
a blank, the answer and three distractors drawn (seeded) from other people's values of
the same column, the same people in every language so the files stay aligned.
"""

from __future__ import annotations

import csv
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from xcult.errors import InputError
from xcult.io import ensure_writable, write_json_atomic
from xcult.layout import probe_file

FIELD = re.compile(r"\{(\w+)\}")


@dataclass
class TemplateStats:
    items: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count
    files: list[str] = field(default_factory=list)


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: invalid UTF-8 ({e.reason})", str(path)) from None
    if not rows:
        raise InputError(f"{path}:1: empty file (expected a header row)", str(path), 1)
    header = rows[0]
    out = []
    for line, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        if len(r) != len(header):
            raise InputError(f"{path}:{line}: {len(r)} fields, the header has {len(header)}", str(path), line)
        out.append((line, {h: c.strip() for h, c in zip(header, r)}))
    return header, out


def _read_templates(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: invalid TOML ({e})", str(path)) from None
    if not data or not all(isinstance(v, dict) and all(isinstance(t, str) for t in v.values()) for v in data.values()):
        raise InputError(f"{path}: expected [<lang>] tables of attribute = \"template\"", str(path))
    return data


def build_probes(people: Path, templates: Path, culture: str, out: Path, seed: int = 0) -> TemplateStats:
    header, rows = _read_table(people)
    tmpl = _read_templates(templates)
    langs = list(tmpl)
    if "en" not in langs:
        raise InputError(f"{templates}: needs an [en] table (probes are English/native pairs)", str(templates))
    targets = list(tmpl["en"])
    for lang in langs:
        if list(tmpl[lang]) != targets:
            raise InputError(f"{templates}: [{lang}] must template the same attributes as [en] ({targets})", str(templates))

    def column(attr: str, lang: str) -> str:
        for c in (f"{attr}@{lang}", attr):
            if c in header:
                return c
        raise InputError(f"{people}:1: no column {attr}@{lang} or {attr} (templates name it)", str(people), 1)

    for lang in langs:
        for target, t in tmpl[lang].items():
            if target not in FIELD.findall(t):
                raise InputError(f"{templates}: [{lang}] {target}: the template must contain {{{target}}}", str(templates))
            for f in FIELD.findall(t):
                column(f, lang)

    rng = random.Random(seed)
    stats = TemplateStats(items=dict.fromkeys(langs, 0))
    items: dict[str, list[dict]] = {lang: [] for lang in langs}
    for target in targets:
        cols = {lang: column(target, lang) for lang in langs}
        for line, row in rows:
            needed = {column(f, lang) for lang in langs for f in FIELD.findall(tmpl[lang][target])}
            if any(not row[c] for c in needed):
                stats.skipped["empty_field"] = stats.skipped.get("empty_field", 0) + 1
                continue
            answer_en = row[cols["en"]]
            others = [r for _, r in rows if r[cols["en"]] and r[cols["en"]] != answer_en and all(r[cols[lang]] for lang in langs)]
            distinct = list({r[cols["en"]]: r for r in others}.values())
            if len(distinct) < 3:
                stats.skipped["too_few_distractors"] = stats.skipped.get("too_few_distractors", 0) + 1
                continue
            chosen = [row, *rng.sample(distinct, 3)]
            order = list(range(4))
            rng.shuffle(order)
            for lang in langs:
                options = [chosen[i][cols[lang]] for i in order]
                if len(set(options)) < 4:  # two people share a value in this language
                    break
            else:
                for lang in langs:
                    fields = {f: row[column(f, lang)] for f in FIELD.findall(tmpl[lang][target])}
                    fields[target] = "____"
                    question = FIELD.sub(lambda m: fields[m.group(1)], tmpl[lang][target])
                    items[lang].append({"question": question, "options": [chosen[i][cols[lang]] for i in order], "answer": row[cols[lang]]})
                    stats.items[lang] += 1
                continue
            stats.skipped["duplicate_options"] = stats.skipped.get("duplicate_options", 0) + 1
    ensure_writable(out)
    for lang in langs:
        path = Path(probe_file(str(out), culture, lang))
        write_json_atomic(path, items[lang])
        stats.files.append(str(path))
    return stats

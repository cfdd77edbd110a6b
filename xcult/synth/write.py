"""`xcult synth`: writes a synthetic world's corpora, parallel pairs, probes, tokenizer
and ground truth under `<out_dir>/synth/`:

- en.jsonl: English pretraining documents; <lang>_mono.jsonl: native documents;
  <lang>_en.tsv: parallel sentence pairs (English first): neutral sentences, plus the
  facts of `parallel_tiers` once each; other facts cross languages only through what a
  model relates on its own;
- probes/<tier>-culture-cloze_{en,<lang>}.json: 4-option cloze probes, one culture per tier;
- planted.parquet: every fact with its planted document count in each corpus
  (`planted_native` monolingual documents, plus `planted_pairs` parallel pairs);
- tokenizer.json: a byte-level BPE tokenizer trained on the world's text;
- world.json (lexicon, facts), config.json and stats.json.

A fact planted n times in a corpus is n documents holding its statement verbatim
(the probe question with its answer filled in), each with filler sentences around it.
Everything is a function of the config and the experiment seed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import polars as pl

from xcult.config import RunConfig
from xcult.io import ensure_writable, write_json_atomic, write_parquet_atomic
from xcult.synth.world import World


def synth_dir(cfg: RunConfig) -> Path:
    return cfg.out_dir / "synth"


def _document(world: World, rng: random.Random, fact_sentence: tuple[str, str] | None, native: bool) -> str:
    lo, hi = world.cfg.sentences_per_document
    sentences = []
    for _ in range(rng.randint(lo, hi)):
        words = world.filler(rng)
        sentences.append(world.native_filler(words) if native else world.english(words))
    if fact_sentence is not None:
        sentences.insert(rng.randint(0, len(sentences)), fact_sentence[1] if native else fact_sentence[0])
    return " ".join(sentences)


def _corpus(world: World, rng: random.Random, native: bool, filler_docs: int) -> list[str]:
    docs = []
    for fact in world.facts:
        n = fact.native_count if native else fact.en_count
        docs += [_document(world, rng, world.fact_sentences(fact), native) for _ in range(n)]
    docs += [_document(world, rng, None, native) for _ in range(filler_docs)]
    rng.shuffle(docs)
    return docs


def _write_lines(path: Path, lines) -> None:
    # Plain writes: the whole world is built in a temporary directory renamed at the end.
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def _train_tokenizer(texts: list[str], vocab_size: int, eod: str, out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[eod], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    tok.save(str(out))


def run_synth(cfg: RunConfig, force: bool = False) -> dict:
    """Writes the world; a complete world (stats.json present) is kept unless `force`."""
    s = cfg.synth
    out = synth_dir(cfg)
    if (out / "stats.json").is_file() and not force:
        return json.loads((out / "stats.json").read_text()) | {"skipped": True}
    t0 = time.perf_counter()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ensure_writable(tmp / "probes")
    world = World(s, cfg.experiment.seed)
    rng = random.Random(cfg.experiment.seed + 1)
    lang = s.language

    en_docs = _corpus(world, rng, native=False, filler_docs=s.filler_documents_en)
    xx_docs = _corpus(world, rng, native=True, filler_docs=s.filler_documents_native)
    # Fact pairs first: prep takes pairs in input order, so they are always kept. Then
    # neutral pairs until their native halves alone outweigh the monolingual side: at
    # mono : parallel = 1 : 1 by tokens, prep then keeps every monolingual document (and
    # with it every planted fact) and trims neutral pairs.
    pairs = [world.fact_sentences(f) for f in world.facts if f.tier in s.parallel_tiers]
    rng.shuffle(pairs)
    mono_chars, native_chars = sum(map(len, xx_docs)), sum(len(x) for _, x in pairs)
    while len(pairs) < s.parallel_pairs or native_chars < mono_chars:
        words = world.filler(rng)
        pairs.append((world.english(words), world.native_filler(words)))
        native_chars += len(pairs[-1][1])
    _write_lines(tmp / "en.jsonl", (json.dumps({"text": d}, ensure_ascii=False) for d in en_docs))
    _write_lines(tmp / f"{lang}_mono.jsonl", (json.dumps({"text": d}, ensure_ascii=False) for d in xx_docs))
    _write_lines(tmp / f"{lang}_en.tsv", (f"{e}\t{x}" for e, x in pairs))

    rows = []
    for tier in s.tiers:
        en_items, xx_items = [], []
        for f in (f for f in world.facts if f.tier == tier):
            options = [f.value, *f.distractors]
            random.Random(cfg.experiment.seed * 7919 + f.item).shuffle(options)
            en_q, xx_q = world.questions(f)
            en_items.append({"question": en_q, "options": options, "answer": f.value})
            xx_items.append({"question": xx_q, "options": [world.lexicon[o] for o in options], "answer": world.lexicon[f.value]})
            rows.append(
                {
                    "culture": tier,
                    "item": len(en_items) - 1,
                    "fact": f.item,
                    "community": f.community,
                    "attribute": f.attribute,
                    "value": f.value,
                    "planted_en": f.en_count,
                    "planted_native": f.native_count,
                    # the pair's native half is a document of the native corpus too
                    "planted_pairs": int(tier in s.parallel_tiers),
                }
            )
        write_json_atomic(tmp / "probes" / f"{tier}-culture-cloze_en.json", en_items)
        write_json_atomic(tmp / "probes" / f"{tier}-culture-cloze_{lang}.json", xx_items)
    planted = pl.DataFrame(rows)
    write_parquet_atomic(tmp / "planted.parquet", planted)
    _train_tokenizer(en_docs + xx_docs + [e for e, _ in pairs] + [x for _, x in pairs], s.vocab_size, cfg.tokenizer.eod, tmp / "tokenizer.json")
    write_json_atomic(tmp / "world.json", {"lexicon": world.lexicon, "communities": world.communities, "values": world.values, "facts": [f.__dict__ for f in world.facts]})
    stats = {
        "language": lang,
        "facts": len(world.facts),
        "tiers": {t: int((planted["culture"] == t).sum()) for t in s.tiers},
        "documents_en": len(en_docs),
        "documents_native": len(xx_docs),
        "fact_documents_en": int(planted["planted_en"].sum()),
        "fact_documents_native": int(planted["planted_native"].sum()),
        "parallel_pairs": len(pairs),
        "lexicon": len(world.lexicon),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_json_atomic(tmp / "config.json", cfg.to_dict())
    write_json_atomic(tmp / "stats.json", stats)
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return stats

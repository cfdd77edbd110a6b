"""`xcult synth`: writes a synthetic world's corpora, parallel pairs, probes, tokenizer
and ground truth under `<out_dir>/synth/`:

- en.jsonl: English pretraining documents; <lang>_mono.jsonl: native documents;
  <lang>_en.tsv: parallel sentence pairs (English first): the bridges (facts about
  never-probed communities, neutral sentences naming each probed or shared community,
  the facts of `parallel_tiers`), then neutral pairs; a probed fact crosses languages
  only through what a model relates on its own;
- probes/<tier>-culture-cloze_{en,<lang>}.json: 4-option cloze probes, one culture per
  tier; controls/: the same questions asked of another community (swapped control);
- <lang>_lexicon.tsv: every English word and its native word (code-switched bridges:
  `prep.languages.<lang>.switch_rate`);
- translation.jsonl: held-out parallel pairs for the translation diagnostic;
- planted.parquet: every probed fact with its planted document count in each corpus
  (`planted_native` monolingual documents, plus `planted_pairs` parallel pairs);
- tokenizer.json: word-level (one id per word) or a byte-level BPE trained on the world;
- world.json (lexicon, facts), config.json and stats.json.

A fact planted n times in a corpus is n documents holding one of its paraphrases (the
probe's statement is the first), each with filler sentences around it. Everything is a
function of the config and the experiment seed.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from pathlib import Path

import polars as pl

from xcult import completion, layout
from xcult.config import LANGUAGE_NAMES, RunConfig
from xcult.grammar import FILLER_NOUNS
from xcult.io import ensure_writable, replace_dir, write_json_atomic, write_parquet_atomic
from xcult.stage import StageReport
from xcult.stage import parts as _parts
from xcult.synth.world import Fact, World

UNK = "[UNK]"


def _document(world: World, rng: random.Random, fact: Fact | None, native: bool) -> str:
    """Filler sentences around the fact's sentence (a random paraphrase); with
    `topic_mentions`, each filler sentence names the fact's community with that
    probability, as real documents keep naming their topic; with `restate`, the document
    may end by repeating one of its sentences."""
    lo, hi = world.cfg.sentences_per_document
    sentences = []
    fact_sentence = None if fact is None else world.fact_sentences(fact, world.random_template(rng))
    for _ in range(rng.randint(lo, hi)):
        topic = fact is not None and rng.random() < world.cfg.topic_mentions
        words = world.filler(rng, community=fact.community if topic else None)
        sentences.append(world.native_filler(words) if native else world.english(words))
    if fact_sentence is not None:
        sentences.insert(rng.randint(0, len(sentences)), fact_sentence[1] if native else fact_sentence[0])
    if world.cfg.restate and rng.random() < world.cfg.restate:  # no draw when off: old worlds stay
        sentences.append(rng.choice(sentences))
    return " ".join(sentences)


def _corpus(world: World, rng: random.Random, native: bool, filler_docs: int) -> list[str]:
    docs = []
    for fact in world.facts:
        n = fact.native_count if native else fact.en_count
        docs += [_document(world, rng, fact, native) for _ in range(n)]
    docs += [_document(world, rng, None, native) for _ in range(filler_docs)]
    rng.shuffle(docs)
    return docs


def _bridge_pairs(world: World, rng: random.Random) -> list[tuple[str, str]]:
    """The pairs that must be kept: facts about the bridge communities (every relation
    word and value in many pairs), neutral sentences naming each probed and shared
    community (so a model can tell a shared fact is the same fact in both languages),
    and the facts of `parallel_tiers` once each."""
    s = world.cfg
    pairs = [world.fact_sentences(f, world.random_template(rng)) for f in world.facts if f.tier == "bridge" for _ in range(s.bridge_repeats)]
    for c in world.probed + world.shared:
        for _ in range(s.bridge_mentions):
            words = world.filler(rng, community=c)
            pairs.append((world.english(words), world.native_filler(words)))
    pairs += [world.fact_sentences(f) for f in world.probed_facts() if f.tier in s.parallel_tiers]
    rng.shuffle(pairs)
    return pairs


def _heldout(world: World, rng: random.Random, seen: set[str]) -> list[dict]:
    """Parallel pairs never trained on, for the translation diagnostic: a neutral sentence
    naming a probed community (kind `name`) or a value (kind `value`); `word` is the
    native word whose prediction in the pair's native half is scored, `en_word` its
    English source."""
    out, tries = [], 0
    values = [v for vs in world.values.values() for v in vs]
    while len(out) < world.cfg.heldout_pairs and tries < 100 * world.cfg.heldout_pairs:
        tries += 1
        kind = "name" if len(out) % 2 == 0 else "value"
        target = rng.choice(world.probed) if kind == "name" else rng.choice(values)
        words = world.filler(rng, community=target) if kind == "name" else ["the", target, "is", "known", "for", "the", rng.choice(FILLER_NOUNS)]
        en = world.english(words)
        if en in seen:
            continue
        seen.add(en)
        out.append({"kind": kind, "en": en, "xx": world.native_filler(words), "word": world.lexicon[target], "en_word": target})
    return out


def _swapped_community(world: World, truth: dict, fact: Fact, options: list[str], rng: random.Random) -> str | None:
    """Another probed community whose true value for the attribute (`truth`) is not an option."""
    others = [c for c in world.probed if c != fact.community and truth.get((c, fact.attribute)) not in options]
    return rng.choice(others) if others else None


def _write_lines(path: Path, lines) -> None:
    # Plain writes: the whole world is built in a temporary directory renamed at the end.
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def _train_tokenizer(world: World, texts: list[str], vocab_size: int, eod: str, out: Path) -> None:
    """Word-level worlds: one id per word of the world (plus punctuation and the bridge
    template's labels); BPE worlds: a byte-level BPE trained on the world's text."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    if world.cfg.tokenization == "word":
        words = [eod, UNK, ".", ":", ",", world.end, *LANGUAGE_NAMES.values(), *world.vocabulary()]
        vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
        tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex(f"[.:,{world.end}]"), "isolated")]
        )
        tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
        tok.save(str(out))
        return
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[eod], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    tok.save(str(out))


def _settings(cfg: RunConfig) -> dict:
    """What the world is a function of."""
    return {"synth": dataclasses.asdict(cfg.synth), "seed": cfg.experiment.seed, "eod": cfg.tokenizer.eod}


def synth_status(cfg: RunConfig) -> completion.Status:
    out = layout.of(cfg).synth
    st = completion.status(out, _settings(cfg), [])
    return completion.Status("stale", "stats.json is missing") if st and not (out / "stats.json").is_file() else st


def run_synth(cfg: RunConfig, force: bool = False) -> dict:
    """Writes the world; a current world (same [synth] section, seed and EOD token) is
    kept unless `force`; a stale one is rewritten (`rebuilt` says why)."""
    s = cfg.synth
    out = layout.of(cfg).synth
    st = synth_status(cfg)
    if st and not force:
        return json.loads((out / "stats.json").read_text()) | {"skipped": True}
    t0 = time.perf_counter()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    files = layout.SynthFiles(tmp)  # written under the temporary name, renamed at the end
    ensure_writable(files.probes)
    world = World(s, cfg.experiment.seed)
    rng = random.Random(cfg.experiment.seed + 1)
    lang = s.language

    en_docs = _corpus(world, rng, native=False, filler_docs=s.filler_documents_en)
    xx_docs = _corpus(world, rng, native=True, filler_docs=s.filler_documents_native)
    # Bridge pairs first: prep takes pairs in input order, so they are always kept. Then
    # neutral pairs until their native halves alone outweigh the monolingual side: at
    # mono : parallel = 1 : 1 by tokens, prep then keeps every monolingual document (and
    # with it every planted fact) and trims neutral pairs.
    pairs = _bridge_pairs(world, rng)
    n_bridge = len(pairs)
    mono_chars, native_chars = sum(map(len, xx_docs)), sum(len(x) for _, x in pairs)
    while len(pairs) < s.parallel_pairs or native_chars < mono_chars:
        words = world.filler(rng)
        pairs.append((world.english(words), world.native_filler(words)))
        native_chars += len(pairs[-1][1])
    heldout = _heldout(world, rng, {e for e, _ in pairs})
    _write_lines(files.english, (json.dumps({"text": d}, ensure_ascii=False) for d in en_docs))
    _write_lines(files.mono(lang), (json.dumps({"text": d}, ensure_ascii=False) for d in xx_docs))
    _write_lines(files.pairs(lang), (f"{e}\t{x}" for e, x in pairs))
    # The bilingual lexicon (code-switched bridges): every English word and its native word.
    _write_lines(files.lexicon(lang), (f"{w}\t{x}" for w, x in sorted(world.lexicon.items()) if w != x))
    _write_lines(files.translation, (json.dumps(h, ensure_ascii=False) for h in heldout))

    rows = []
    ensure_writable(files.controls)
    truth = {(f.community, f.attribute): f.value for f in world.probed_facts()}
    for tier in s.tiers:
        en_items, xx_items, en_ctrl, xx_ctrl = [], [], [], []
        for f in (f for f in world.probed_facts() if f.tier == tier):
            options = [f.value, *f.distractors]
            random.Random(cfg.experiment.seed * 7919 + f.item).shuffle(options)
            xx_options = [world.lexicon[o] for o in options]
            en_q, xx_q = world.questions(f)
            en_items.append({"question": en_q, "options": options, "answer": f.value})
            xx_items.append({"question": xx_q, "options": xx_options, "answer": world.lexicon[f.value]})
            # The swapped control: the same options asked of a community whose value is
            # none of them; picking the "answer" there is option-prior bias.
            other = _swapped_community(world, truth, f, options, random.Random(cfg.experiment.seed * 104729 + f.item))
            if other is not None:
                en_c, xx_c = world.questions(f, community=other)
                en_ctrl.append({"question": en_c, "options": options, "answer": f.value, "item": len(en_items) - 1})
                xx_ctrl.append({"question": xx_c, "options": xx_options, "answer": world.lexicon[f.value], "item": len(en_items) - 1})
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
        for base, en, xx in ((files.probes, en_items, xx_items), (files.controls, en_ctrl, xx_ctrl)):
            write_json_atomic(Path(layout.probe_file(str(base), tier, "en")), en)
            write_json_atomic(Path(layout.probe_file(str(base), tier, lang)), xx)
    planted = pl.DataFrame(rows)
    write_parquet_atomic(files.planted, planted)
    _train_tokenizer(world, en_docs + xx_docs + [e for e, _ in pairs] + [x for _, x in pairs], s.vocab_size, cfg.tokenizer.eod, files.tokenizer)
    write_json_atomic(files.world, {"lexicon": world.lexicon, "communities": world.communities, "values": world.values, "facts": [f.__dict__ for f in world.facts]})
    stats = {
        "language": lang,
        "facts": len(world.probed_facts()),
        "tiers": {t: int((planted["culture"] == t).sum()) for t in s.tiers},
        "documents_en": len(en_docs),
        "documents_native": len(xx_docs),
        "fact_documents_en": int(planted["planted_en"].sum()),
        "fact_documents_native": int(planted["planted_native"].sum()),
        "parallel_pairs": len(pairs),
        "bridge_pairs": n_bridge,
        "heldout_pairs": len(heldout),
        "lexicon": len(world.lexicon),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if st.state == "stale":
        stats["rebuilt"] = st.reason
    write_json_atomic(tmp / "config.json", cfg.to_dict())
    write_json_atomic(tmp / "stats.json", stats)
    completion.write(tmp, completion.record(_settings(cfg), []))
    replace_dir(tmp, out)
    return stats


def stage(cfg: RunConfig, progress: bool) -> StageReport:
    st = synth_status(cfg)
    s = run_synth(cfg)
    summary = f"{s['facts']} facts, {s['documents_en']:,} en / {s['documents_native']:,} {s['language']} documents, {s['parallel_pairs']:,} pairs"
    return StageReport(summary, **_parts("world", st))

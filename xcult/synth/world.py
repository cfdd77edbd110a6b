"""A seeded synthetic bilingual world: communities, their cultural facts, and a lexicon
that renders English sentences into a target language written in a real non-Latin
script (pseudo-words of Tibetan or Hangul syllables).

Every English word has exactly one native word. With `word_order = "svo"` the native
sentence is a word-for-word clone of the English one; `"sov"` moves the value before the
verb (the reversal-curse mismatch: a causal model then learns "value from community"
natively but is asked "value from community + relation" in English):

    en:  the Vold people eat kelbrun .
    svo: <the> <Vold> <people> <eat> <kelbrun> །
    sov: <the> <Vold> <people> <kelbrun> <eat> །

Bridges (parallel pairs) are what relates the two vocabularies: fact-shaped sentences
about `bridge_communities` that are never probed (every relation word and every value
in many pairs), and neutral sentences naming each probed community. Whether a model
then answers a question in one language about a fact it saw only in the other is what
the study measures.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from xcult.config import SynthConfig, TierConfig
from xcult.grammar import (
    ATTRIBUTES,
    BO_CONSONANTS,
    BO_VOWELS,
    CODAS,
    FILLER_ADJ,
    FILLER_NOUNS,
    FILLER_VERBS,
    FUNCTION_WORDS,
    JOINERS,
    LATIN,
    SENTENCE_END,
    SUBJECTS,
)


@dataclass(frozen=True)
class Fact:
    item: int
    tier: str  # a probed tier, or "bridge" / "shared" (never probed)
    community: str
    attribute: str
    value: str
    distractors: tuple[str, ...]
    en_count: int
    native_count: int


def tier_counts(tier: TierConfig, f: int, rare: int, k: int) -> tuple[int, int]:
    """(English, native) documents for the k-th fact of a tier whose frequent count is f."""
    where = tier.frequent_in
    if where == "split":  # half the facts frequent in each corpus
        where = "native" if k % 2 == 0 else "en"
    return (f if where in ("en", "both") else rare, f if where in ("native", "both") else rare)


class World:
    def __init__(self, cfg: SynthConfig, seed: int):
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.syllable_join, self.word_join = JOINERS[(cfg.language, cfg.tokenization)]
        self.end = SENTENCE_END[cfg.language]
        used: set[str] = set()
        n_probed = sum(t.communities for t in cfg.tiers.values())
        n_comm = n_probed + cfg.bridge_communities + cfg.shared_communities
        if cfg.anchors == "digits":  # control: community names are the same token in both languages
            names = self.rng.sample(range(100, 1000), n_comm)
            self.communities = [str(n) for n in names]
        else:
            self.communities = [self._latin_word(used, 2, capital=True) for _ in range(n_comm)]
        self.probed = self.communities[:n_probed]
        self.bridge = self.communities[n_probed : n_probed + cfg.bridge_communities]
        self.shared = self.communities[n_probed + cfg.bridge_communities :]
        self.values = {a: [self._latin_word(used, 2) for _ in range(cfg.values_per_attribute)] for a in cfg.attributes}
        english = set(FILLER_NOUNS + FILLER_ADJ + FILLER_VERBS + FUNCTION_WORDS)
        for subject in SUBJECTS:
            english.update(w for w in subject if w != "{c}")
        for a in cfg.attributes:
            english.update(ATTRIBUTES[a].split())
        for vs in self.values.values():
            english.update(vs)
        native_used: set[str] = set()
        self.lexicon = {w: self._native_word(native_used) for w in sorted(english)}
        for c in self.communities:  # in order, so names do not depend on set iteration
            self.lexicon[c] = c if cfg.anchors == "digits" else self._native_word(native_used)
        self.facts = self._facts()

    def _latin_word(self, used: set[str], syllables: int, capital: bool = False) -> str:
        while True:
            w = "".join(self.rng.choice(LATIN) for _ in range(syllables)) + self.rng.choice(CODAS)
            if w not in used and len(w) > 3:
                used.add(w)
                return w.capitalize() if capital else w

    def _syllable(self) -> str:
        if self.cfg.language == "bo":
            return self.rng.choice(BO_CONSONANTS) + self.rng.choice(BO_VOWELS)
        return chr(0xAC00 + self.rng.randrange(11172))

    def _native_word(self, used: set[str]) -> str:
        while True:
            w = self.syllable_join.join(self._syllable() for _ in range(self.rng.randint(1, 3)))
            if w not in used:
                used.add(w)
                return w

    def _fact(self, tier: str, community: str, attribute: str, en: int, native: int, facts: list[Fact]) -> Fact:
        pool = self.values[attribute]
        value = self.rng.choice(pool)
        distractors = tuple(self.rng.sample([v for v in pool if v != value], 3))
        return Fact(len(facts), tier, community, attribute, value, distractors, en, native)

    def _facts(self) -> list[Fact]:
        cfg, rng = self.cfg, self.rng
        facts: list[Fact] = []
        communities = iter(self.probed)
        for tier_name, tier in cfg.tiers.items():
            cells = [(c, a) for c in [next(communities) for _ in range(tier.communities)] for a in cfg.attributes]
            freqs = [cfg.frequencies[i % len(cfg.frequencies)] for i in range(len(cells))]
            rng.shuffle(freqs)
            for k, ((community, attribute), f) in enumerate(zip(cells, freqs)):
                rare = cfg.rare[len(facts) % len(cfg.rare)]
                en, native = tier_counts(tier, f, rare, k)
                facts.append(self._fact(tier_name, community, attribute, en, native, facts))
        for c in self.bridge:  # facts that occur only in the parallel pairs
            for a in cfg.attributes:
                facts.append(self._fact("bridge", c, a, 0, 0, facts))
        for c in self.shared:  # the same facts monolingually in both corpora
            for a in cfg.attributes:
                facts.append(self._fact("shared", c, a, cfg.shared_frequency, cfg.shared_frequency, facts))
        return facts

    def probed_facts(self) -> list[Fact]:
        return [f for f in self.facts if f.tier in self.cfg.tiers]

    # rendering -----------------------------------------------------------------------
    def english(self, words: list[str]) -> str:
        return " ".join(words) + " ."

    def native(self, words: list[str]) -> str:
        return self.word_join.join(self.lexicon[w] for w in words) + " " + self.end

    def fact_words(self, fact: Fact, value: str, template: int = 0) -> tuple[list[str], list[str]]:
        """English and native word lists of a fact sentence (the value last in English)."""
        verb = ATTRIBUTES[fact.attribute].split()
        subject = [fact.community if w == "{c}" else w for w in SUBJECTS[template]]
        native = subject + [value] + verb if self.cfg.word_order == "sov" else subject + verb + [value]
        return subject + verb + [value], native

    def fact_sentences(self, fact: Fact, template: int = 0) -> tuple[str, str]:
        en, xx = self.fact_words(fact, fact.value, template)
        return self.english(en), self.native(xx)

    def random_template(self, rng: random.Random) -> int:
        return rng.randrange(self.cfg.templates)

    def questions(self, fact: Fact, community: str | None = None) -> tuple[str, str]:
        """Cloze questions (template 0): the value replaced by a blank in each language.
        `community` re-asks the question about another community (the swapped control)."""
        marker = "\x00"
        if community is not None:
            fact = Fact(fact.item, fact.tier, community, fact.attribute, fact.value, fact.distractors, 0, 0)
        en, xx = self.fact_words(fact, marker)
        en_q = self.english(en).replace(marker, "____")
        xx_q = self.word_join.join("____" if w == marker else self.lexicon[w] for w in xx) + " " + self.end
        return en_q, xx_q

    def filler(self, rng: random.Random, community: str | None = None) -> list[str]:
        """A neutral sentence; `community` forces one that names it (a bridge mention).
        Otherwise it sometimes names a probed community or a value, so the whole lexicon
        occurs outside the facts."""
        r = rng.random() if community is None else 0.0
        if r < 0.15:
            c = community or rng.choice(self.probed)
            return ["the", c, "people", "like", "the", rng.choice(FILLER_NOUNS)]
        if r < 0.3:
            a = rng.choice(self.cfg.attributes)
            return ["the", rng.choice(self.values[a]), "is", "known", "for", "the", rng.choice(FILLER_NOUNS)]
        return ["the", rng.choice(FILLER_ADJ), rng.choice(FILLER_NOUNS), rng.choice(FILLER_VERBS), "a", rng.choice(FILLER_NOUNS)]

    def native_filler(self, words: list[str]) -> str:
        """Filler in native order: SVO as English; SOV puts the verb last."""
        if self.cfg.word_order == "svo":
            return self.native(words)
        verb_at = next((i for i, w in enumerate(words) if w in FILLER_VERBS or w in ("like", "is")), None)
        if verb_at is None:
            return self.native(words)
        return self.native(words[:verb_at] + words[verb_at + 1 :] + [words[verb_at]])

    def vocabulary(self) -> list[str]:
        """Every word the world writes, English and native (word-level tokenizers)."""
        return sorted(set(self.lexicon) | set(self.lexicon.values()))

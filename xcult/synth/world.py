"""A seeded synthetic bilingual world: communities, their cultural facts, and a lexicon
that renders English sentences into a target language written in a real non-Latin
script (pseudo-words of Tibetan or Hangul syllables) with its own word order.

English: "The Vold people eat kelbrun ."  ->  Tibetan-script: "<Vold> <people> <kelbrun> <eat>།"
(subject - object - verb, no articles). Every English word has exactly one native
word, so a model can only answer a native question about a fact it saw in English by
relating the two vocabularies - which is what parallel data with bridges teaches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from xcult.config import SynthConfig

# attribute -> (English verb phrase, the value's pool name)
ATTRIBUTES = {
    "festival": "celebrate",
    "food": "eat",
    "dwelling": "live in",
    "region": "come from",
    "custom": "practice",
    "craft": "make",
    "animal": "herd",
    "drink": "drink",
}
FILLER_NOUNS = "river mountain village market road house field tree stone rain snow wind child teacher song story bread water fire sky bird horse boat door book".split()
FILLER_ADJ = "old new small large cold warm quiet busy green dark long short high low".split()
FILLER_VERBS = "sees finds crosses builds carries opens follows watches likes visits".split()
LATIN = "ba be bi bo bu da de di do du ga ge gi go gu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu za ze zi zo zu".split()
CODAS = ["", "", "n", "r", "l", "m", "s", "k"]
BO_CONSONANTS = "ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟའཡརལཤསཧཨ"
BO_VOWELS = ["", "ི", "ུ", "ེ", "ོ"]
# syllable joiner, sentence end, word joiner (Tibetan marks syllables, not words)
SCRIPTS = {"bo": ("་", "།", "་"), "ko": ("", ".", " ")}


@dataclass(frozen=True)
class Fact:
    item: int
    tier: str
    community: str
    attribute: str
    value: str
    distractors: tuple[str, ...]
    en_count: int
    native_count: int


class World:
    def __init__(self, cfg: SynthConfig, seed: int):
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.syllable_join, self.end, self.word_join = SCRIPTS[cfg.language]
        used: set[str] = set()
        n_comm = sum(t.communities for t in cfg.tiers.values())
        self.communities = [self._latin_word(used, 2, capital=True) for _ in range(n_comm)]
        self.values = {a: [self._latin_word(used, 2) for _ in range(cfg.values_per_attribute)] for a in cfg.attributes}
        english = set(FILLER_NOUNS + FILLER_ADJ + FILLER_VERBS + ["people", "the", "a", "is", "and", "like", "good", "known", "for"])
        for a in cfg.attributes:
            english.update(ATTRIBUTES[a].split())
        english.update(self.communities)
        for vs in self.values.values():
            english.update(vs)
        native_used: set[str] = set()
        self.lexicon = {w: self._native_word(native_used) for w in sorted(english)}
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

    def _facts(self) -> list[Fact]:
        cfg, rng = self.cfg, self.rng
        facts = []
        communities = iter(self.communities)
        for tier_name, tier in cfg.tiers.items():
            cells = [(c, a) for c in [next(communities) for _ in range(tier.communities)] for a in cfg.attributes]
            freqs = [cfg.frequencies[i % len(cfg.frequencies)] for i in range(len(cells))]
            rng.shuffle(freqs)
            for (community, attribute), f in zip(cells, freqs):
                pool = self.values[attribute]
                value = rng.choice(pool)
                distractors = tuple(rng.sample([v for v in pool if v != value], 3))
                rare = cfg.rare[len(facts) % len(cfg.rare)]
                en = f if tier.en == "frequent" else rare
                native = f if tier.native == "frequent" else rare
                facts.append(Fact(len(facts), tier_name, community, attribute, value, distractors, en, native))
        return facts

    # rendering -----------------------------------------------------------------------
    def english(self, words: list[str]) -> str:
        s = " ".join(words)
        return s[0].upper() + s[1:] + "."

    def native(self, words: list[str]) -> str:
        """The native rendering: articles dropped, the verb moved to the end."""
        return self.word_join.join(self.lexicon[w] for w in words if w not in ("the", "a")) + self.end

    def fact_words(self, fact: Fact, value: str) -> tuple[list[str], list[str]]:
        """English and native word orders (subject verb object / subject object verb)."""
        verb = ATTRIBUTES[fact.attribute].split()
        subject = ["the", fact.community, "people"]
        return subject + verb + [value], subject + [value] + verb

    def fact_sentences(self, fact: Fact) -> tuple[str, str]:
        en, xx = self.fact_words(fact, fact.value)
        return self.english(en), self.native(xx)

    def questions(self, fact: Fact) -> tuple[str, str]:
        """Cloze questions: the value replaced by a blank in each language."""
        marker = "\x00"
        en, xx = self.fact_words(fact, marker)
        en_q = self.english(en).replace(marker, "____")
        xx_q = self.word_join.join("____" if w == marker else self.lexicon[w] for w in xx if w not in ("the", "a")) + self.end
        return en_q, xx_q

    def filler(self, rng: random.Random) -> list[str]:
        """A neutral sentence (English word order) from the filler grammar, sometimes
        naming a community or a value so the whole lexicon occurs outside the facts."""
        r = rng.random()
        if r < 0.15:
            return ["the", rng.choice(self.communities), "people", "like", rng.choice(FILLER_NOUNS)]
        if r < 0.3:
            a = rng.choice(self.cfg.attributes)
            return [rng.choice(self.values[a]), "is", "known", "for", "the", rng.choice(FILLER_NOUNS)]
        return ["the", rng.choice(FILLER_ADJ), rng.choice(FILLER_NOUNS), rng.choice(FILLER_VERBS), "a", rng.choice(FILLER_NOUNS)]

    def native_filler(self, words: list[str]) -> str:
        """Filler in native order: the verb (third-to-last word or 'like'/'is') last."""
        verb_at = next((i for i, w in enumerate(words) if w in FILLER_VERBS or w in ("like", "is")), None)
        if verb_at is None:
            return self.native(words)
        return self.native(words[:verb_at] + words[verb_at + 1 :] + [words[verb_at]])

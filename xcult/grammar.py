"""The synthetic world's vocabulary and grammar as plain data (no imports), so the
config can validate `[synth]` against it without importing the world."""

# attribute -> English verb phrase
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
# Subject phrases of a fact sentence ({c}: the community); probes use the first.
SUBJECTS = [
    ["the", "{c}", "people"],
    ["people", "in", "{c}"],
    ["in", "{c}", "they"],
    ["every", "{c}", "family"],
    ["many", "{c}", "folk"],
    ["those", "from", "{c}"],
]
FILLER_NOUNS = "river mountain village market road house field tree stone rain snow wind child teacher song story bread water fire sky bird horse boat door book".split()
FILLER_ADJ = "old new small large cold warm quiet busy green dark long short high low".split()
FILLER_VERBS = "sees finds crosses builds carries opens follows watches likes visits".split()
FUNCTION_WORDS = ["people", "the", "a", "is", "and", "like", "good", "known", "for"]
LATIN = "ba be bi bo bu da de di do du ga ge gi go gu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo vu za ze zi zo zu".split()
CODAS = ["", "", "n", "r", "l", "m", "s", "k"]
BO_CONSONANTS = "ཀཁགངཅཆཇཉཏཐདནཔཕབམཙཚཛཝཞཟའཡརལཤསཧཨ"
BO_VOWELS = ["", "ི", "ུ", "ེ", "ོ"]
# sentence end per script; syllable joiner and word joiner per tokenization. BPE worlds
# join Tibetan words with the tsheg (which also joins syllables, as real Tibetan does);
# word-level worlds separate words by spaces so each word is one token.
SENTENCE_END = {"bo": "།", "ko": "."}
JOINERS = {("bo", "bpe"): ("་", "་"), ("ko", "bpe"): ("", " "), ("bo", "word"): ("", " "), ("ko", "word"): ("", " ")}

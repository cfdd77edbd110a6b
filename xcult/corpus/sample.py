"""A small seeded multilingual sample (English, Chinese, Tibetan) in every input
format the engine reads, with stray characters of other scripts so that filtering
has work to do. It backs the bundled `configs/small.toml` and the tests."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

EN_WORDS = (
    "the of and to in is was for on as with by at from his her they this which culture festival food river "
    "mountain village people language history music dance tea rice temple market winter summer city north "
    "south family song story king queen new old great small known called made many first also"
).split()
ZH_CHARS = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严"
BO_SYLLABLES = "བོད ཀྱི རྒྱལ ས ལྷ ཡིན ནི མི སྐད ཡིག ཆོས དགོན པ རི ཆུ ལོ ཟླ ཉི མ གནམ ས་ཆ ཁང ཟས ཇ བཟའ བཏུང སློབ གྲྭ དུས ཆེན".split()


def _en_sentence(rng: random.Random) -> str:
    words = [rng.choice(EN_WORDS) for _ in range(rng.randint(6, 16))]
    return " ".join(words).capitalize() + "."


def _zh_sentence(rng: random.Random) -> str:
    return "".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(8, 24))) + "。"


def _bo_sentence(rng: random.Random) -> str:
    return "་".join(rng.choice(BO_SYLLABLES) for _ in range(rng.randint(5, 12))) + "།"


def _doc(rng: random.Random, sentence, stray: str, n: tuple[int, int]) -> str:
    sents = [sentence(rng) for _ in range(rng.randint(*n))]
    if rng.random() < 0.3:
        sents.insert(rng.randrange(len(sents)), stray)
    paragraphs = [" ".join(sents[i : i + 4]) for i in range(0, len(sents), 4)]
    return "\n\n".join(paragraphs)


def write_sample(out: Path, seed: int = 0, scale: int = 1) -> dict[str, Path]:
    """Writes the sample under `out` and returns its files by role."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "en": out / "en.jsonl",
        "zh_mono": out / "zh_mono.jsonl.gz",
        "zh_pairs": out / "zh_en.tsv",
        "bo_mono": out / "bo_mono.txt",
        "bo_pairs_en": out / "bo_pairs.en",
        "bo_pairs_bo": out / "bo_pairs.bo",
    }
    with open(files["en"], "w", encoding="utf-8") as f:
        for i in range(1500 * scale):
            text = _doc(rng, _en_sentence, "Beijing (北京) and Lhasa (ལྷ་ས).", (3, 30))
            f.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    with gzip.open(files["zh_mono"], "wt", encoding="utf-8") as f:
        for i in range(600 * scale):
            text = _doc(rng, _zh_sentence, "北京是China的首都。", (2, 12))
            f.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")
    with open(files["zh_pairs"], "w", encoding="utf-8") as f:
        for _ in range(1200 * scale):
            f.write(f"{_en_sentence(rng)}\t{_zh_sentence(rng)}\n")
    with open(files["bo_mono"], "w", encoding="utf-8") as f:
        for _ in range(800 * scale):
            line = " ".join(_bo_sentence(rng) for _ in range(rng.randint(2, 8)))
            if rng.random() < 0.2:
                line += " Tibet"
            f.write(line + "\n")
    with open(files["bo_pairs_en"], "w", encoding="utf-8") as fe, open(files["bo_pairs_bo"], "w", encoding="utf-8") as fb:
        for _ in range(900 * scale):
            fe.write(_en_sentence(rng) + "\n")
            fb.write(_bo_sentence(rng) + "\n")
    return files

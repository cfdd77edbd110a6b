"""Language identification and exact deduplication before mixing: documents of another
language that share the corpus's script (Russian in Mongolian Cyrillic, Japanese in
Chinese) and repeated documents are dropped and counted; duplicates inflate density."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from xcult.cli import main
from xcult.config import load_config
from xcult.corpus.prep import build_unit
from xcult.errors import ConfigError

MN = [
    "Монгол улсын нийслэл Улаанбаатар хот юм. Тус хот нь улсын хамгийн том хот.",
    "Малчид намар өвөлжөөндөө нүүдэг. Адуу мал нь тэдний гол хөрөнгө болдог.",
    "Наадам бол монголчуудын хамгийн том баяр юм. Бөх, морь, сур харвааны уралдаан болдог.",
    "Гэрийн хойморт бурхан тавьдаг заншил олон айлд хадгалагдсаар байна.",
]
RU = [
    "Москва является столицей России и крупнейшим городом страны.",
    "Зимой в Сибири очень холодно, и снег лежит несколько месяцев подряд.",
]
ZH = ["北京是中国的首都，也是政治和文化中心。", "春节是中国最重要的传统节日，家人会团聚吃饭。", "长城是世界上最著名的古代建筑之一。"]
JA = ["東京は日本の首都で、人口が最も多い都市です。", "私たちは毎年夏に京都のお祭りに行きます。"]


def unit_config(tmp_path: Path, lang: str, mono: list[str], language_id: bool, dedup: str) -> object:
    src = tmp_path / f"{lang}_mono.jsonl"
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in mono), encoding="utf-8")
    pairs = tmp_path / f"{lang}_pairs.tsv"
    pairs.write_text("".join(f"Sentence {i} in English.\t{mono[i % len(mono)][:20]}\n" for i in range(20)), encoding="utf-8")
    path = tmp_path / f"{lang}-{language_id}-{dedup}.toml"
    path.write_text(
        f'[experiment]\nname = "t"\nout_dir = "{tmp_path / f"run-{language_id}-{dedup}"}"\n\n'
        f'[prep.languages.{lang}]\nmono_paths = ["{src}"]\npair_paths = ["{pairs}"]\nshortage = "shrink"\n'
        f'language_id = {str(language_id).lower()}\ndedup = "{dedup}"\n',
        encoding="utf-8",
    )
    return load_config(path)


@pytest.mark.parametrize(
    "lang,native,other,code",
    [("mn", MN, RU, "ru"), ("zh", ZH, JA, "ja")],
)
def test_other_languages_and_duplicates_are_dropped_and_counted(tmp_path, lang, native, other, code):
    rng = random.Random(0)
    dups = native[:2]
    mono = native + other + dups
    rng.shuffle(mono)
    off = build_unit(unit_config(tmp_path, lang, mono, False, "off"), lang, progress=False)["inputs"]["monolingual"]
    on = build_unit(unit_config(tmp_path, lang, mono, True, "exact"), lang, progress=False)["inputs"]["monolingual"]
    # off: the other language passes the script filter (it shares the script) and duplicates stay
    assert off["documents_kept"] == len(mono) and not off["dropped"]
    assert on["dropped"] == {f"language_{code}": len(other), "duplicate": len(dups)}
    assert on["documents_kept"] == len(native)


def test_near_copies_are_dropped_by_near_dedup_only(tmp_path):
    rng = random.Random(1)
    vocab = [f"w{i}" for i in range(3000)]
    docs = [" ".join(rng.choices(vocab, k=200)) + "." for _ in range(30)]
    near = []
    for d in docs[:10]:  # one word of 200 changed
        words = d.split()
        words[100] = "changed"
        near.append(" ".join(words))
    src = tmp_path / "en.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in docs + near), encoding="utf-8")
    got = {}
    for mode in ("exact", "near"):
        path = tmp_path / f"{mode}.toml"
        path.write_text(f'[experiment]\nname = "t"\nout_dir = "{tmp_path / mode}"\n\n[prep.english]\npaths = ["{src}"]\ndedup = "{mode}"\n', encoding="utf-8")
        got[mode] = build_unit(load_config(path), "en", progress=False)["inputs"]["documents"]
    assert got["exact"]["documents_kept"] == 40 and not got["exact"]["dropped"]
    assert got["near"]["dropped"] == {"near_duplicate": 10} and got["near"]["documents_kept"] == 30


def test_language_id_for_an_uncovered_language_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        unit_config(tmp_path, "bo", ["བོད་ཀྱི་རྒྱལ་ས་ནི་ལྷ་ས་ཡིན།"], True, "off")
    assert e.value.key == "prep.languages.bo.language_id" and "Tibetan" in str(e.value)


SYNTH = """
[experiment]
name = "dup"
out_dir = "{out}"
seed = 5

[synth]
language = "bo"
tiers = {{ low = {{ communities = 2, frequent_in = "native" }}, english = {{ communities = 2, frequent_in = "en" }} }}
attributes = ["food", "festival"]
frequencies = [2, 4]
rare = [0]
templates = 1
bridge_communities = 2
bridge_repeats = 1
bridge_mentions = 1
heldout_pairs = 10
filler_documents_en = 40
filler_documents_native = 20
parallel_pairs = 60
vocab_size = 300

[tokenizer]
name = "{out}/synth/tokenizer.json"

[prep.english]
paths = ["{out}/synth/en.jsonl", "{dup}"]
dedup = "{dedup}"

[prep.languages.bo]
mono_paths = ["{out}/synth/bo_mono.jsonl"]
pair_paths = ["{out}/synth/bo_en.tsv"]
shortage = "shrink"

[eval]
probes = "{out}/synth/probes"
cultures = ["english"]
languages = {{ english = "bo" }}

[judge]
backend = "match"
"""


def test_duplicates_inflate_density_and_dedup_removes_them(tmp_path):
    """The same world twice, its English corpus with every planted document of three facts
    copied twice more: judged occurrences of those facts triple without dedup, and equal
    the planted counts with it; density follows."""
    results = {}
    for dedup in ("off", "exact"):
        out = tmp_path / f"run-{dedup}"
        dup = tmp_path / f"dup-{dedup}.jsonl"
        dup.write_text("")
        path = tmp_path / f"c-{dedup}.toml"
        path.write_text(SYNTH.format(out=out, dup=dup, dedup=dedup))
        r = CliRunner().invoke(main, ["synth", str(path)])
        assert r.exit_code == 0, r.output
        planted = pl.read_parquet(out / "synth" / "planted.parquet").filter(pl.col("culture") == "english")
        facts = planted.filter(pl.col("planted_en") > 0).head(3)
        statements = [it["question"].replace("____", it["answer"]) for it in json.loads((out / "synth" / "probes" / "english-culture-cloze_en.json").read_text())]
        docs = [json.loads(x)["text"] for x in (out / "synth" / "en.jsonl").read_text().splitlines()]
        copies = [d for d in docs if any(statements[i].rstrip(" .") in d for i in facts["item"])]
        dup.write_text("".join(json.dumps({"text": d}) + "\n" for d in copies * 2))
        r = CliRunner().invoke(main, ["run", str(path), "--no-progress"])
        assert r.exit_code == 0, r.output
        occ = pl.read_parquet(out / "density" / "occurrences.parquet").filter(pl.col("corpus") == "en")
        dens = pl.read_parquet(out / "density" / "density.parquet").filter(pl.col("corpus") == "en")
        stats = json.loads((out / "prep" / "en" / "stats.json").read_text())["inputs"]["documents"]
        results[dedup] = (occ.join(planted, on=["culture", "item"]), dens.row(0, named=True), stats, facts, copies)
    (occ_off, dens_off, stats_off, facts, copies), (occ_on, dens_on, stats_on, _, _) = results["off"], results["exact"]
    assert len(copies) >= 3 and stats_on["dropped"] == {"duplicate": 2 * len(copies)} and "duplicate" not in stats_off["dropped"]
    duplicated = pl.col("item").is_in(facts["item"].to_list())
    assert (occ_on["occurrences"] == occ_on["planted_en"]).all()
    off = occ_off.filter(duplicated)
    assert (off["occurrences"] == 3 * off["planted_en"]).all()
    assert (occ_off["occurrences"] >= occ_off["planted_en"]).all()  # a copied document may hold another fact too
    assert dens_off["occurrences"] > dens_on["occurrences"] and dens_off["density"] > dens_on["density"]

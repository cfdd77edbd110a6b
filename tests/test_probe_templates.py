"""Appendix D probes from a people table and templates."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from xcult.cli import main
from xcult.errors import InputError
from xcult.probe_templates import build_probes
from xcult.probes import load_culture

PEOPLE = """name@en\tname@zh\tbirthplace@en\tbirthplace@zh\toccupation@en\toccupation@zh\tbirth_date
Li Bai\t李白\tSuiye\t碎叶\tpoet\t诗人\t701
Du Fu\t杜甫\tGongyi\t巩义\tpoet\t诗人\t712
Wang Wei\t王维\tQi County\t祁县\tpainter\t画家\t699
Su Shi\t苏轼\tMeishan\t眉山\tofficial\t官员\t1037
Li Qingzhao\t李清照\tJinan\t济南\twriter\t作家\t1084
Nobody\t无名\t\t\tfarmer\t农民\t1000
"""
TEMPLATES = """
[en]
birthplace = "{name} was born in {birthplace}."
occupation = "{name}, born in {birth_date}, worked as a {occupation}."

[zh]
birthplace = "{name}出生于{birthplace}。"
occupation = "{name}生于{birth_date}年，职业是{occupation}。"
"""


def write(tmp_path, people=PEOPLE, templates=TEMPLATES):
    (tmp_path / "p.tsv").write_text(people, encoding="utf-8")
    (tmp_path / "t.toml").write_text(templates, encoding="utf-8")
    return tmp_path / "p.tsv", tmp_path / "t.toml"


def test_aligned_probes_with_distractors_from_the_same_column(tmp_path):
    p, t = write(tmp_path)
    s = build_probes(p, t, "poets", tmp_path / "out", seed=1)
    # birthplace: 5 people with places (Nobody has none); occupation: poets share a value,
    # so only people whose 3 distractors differ in both languages count.
    assert s.skipped["empty_field"] == 1
    c = load_culture(str(tmp_path / "out"), "poets", "zh")
    assert not c.problems and len(c.index) == s.items["en"] == s.items["zh"] >= 5
    en, zh = c.items("en"), c.items("zh")
    places = {"Suiye", "Gongyi", "Qi County", "Meishan", "Jinan"}
    first = en[0]
    assert first.question == "Li Bai was born in ____." and first.answer == "Suiye" and set(first.options) <= places
    assert zh[0].question == "李白出生于____。" and zh[0].answer == "碎叶"
    # The same people's values, in the same order, in both languages.
    en_to_zh = {"Suiye": "碎叶", "Gongyi": "巩义", "Qi County": "祁县", "Meishan": "眉山", "Jinan": "济南"}
    assert [en_to_zh[o] for o in first.options] == zh[0].options
    occ = [it for it in en if "worked as" in it.question]
    assert occ and all(len(set(it.options)) == 4 for it in occ) and "born in 701" in occ[0].question
    again = build_probes(p, t, "poets", tmp_path / "again", seed=1)
    assert (tmp_path / "out" / "poets-culture-cloze_en.json").read_text() == (tmp_path / "again" / "poets-culture-cloze_en.json").read_text()
    assert again.items == s.items


def test_bad_inputs_name_the_file_and_line(tmp_path):
    p, t = write(tmp_path, people=PEOPLE.replace("Du Fu\t杜甫\t", "Du Fu\t", 1))
    with pytest.raises(InputError) as e:
        build_probes(p, t, "x", tmp_path / "o")
    assert e.value.line == 3 and "p.tsv:3" in str(e.value)
    p, t = write(tmp_path, templates=TEMPLATES.replace("生于{birth_date}年", "生于{hometown}年"))
    with pytest.raises(InputError, match="hometown"):
        build_probes(p, t, "x", tmp_path / "o")
    p, t = write(tmp_path, templates=TEMPLATES.replace('birthplace = "{name}出生于{birthplace}。"\n', ""))
    with pytest.raises(InputError, match="same attributes"):
        build_probes(p, t, "x", tmp_path / "o")


def test_cli(tmp_path):
    p, t = write(tmp_path)
    r = CliRunner().invoke(main, ["probes", "from-templates", str(p), str(t), "--culture", "poets", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "poets-culture-cloze_zh.json" in r.output

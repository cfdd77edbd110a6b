import json

import pytest

from tests.conftest import PROBES
from xcult.errors import InputError, MissingPathError
from xcult.probes import load_culture, read_probe_file

GOOD = {"question": "The capital is ____.", "options": ["Lhasa", "Paris", "Rome", "Oslo"], "answer": "Lhasa"}
GOOD_XX = {"question": "____ ཡིན།", "options": ["ལྷ་ས", "པེ་རི", "རོམ", "ཨོ་སི"], "answer": "ལྷ་ས"}


def write_pair(d, en, xx, culture="bo"):
    (d / f"{culture}-culture-cloze_en.json").write_text(json.dumps(en, indent=1, ensure_ascii=False), encoding="utf-8")
    (d / f"{culture}-culture-cloze_{culture}.json").write_text(json.dumps(xx, indent=1, ensure_ascii=False), encoding="utf-8")
    return d


@pytest.mark.parametrize("culture,count", [("zh", 328), ("bo", 268)])
def test_real_probes_load_and_validate(culture, count):
    if not (PROBES / f"{culture}-culture-cloze_en.json").exists():
        pytest.skip("../shared/data/probes is absent")
    c = load_culture(str(PROBES), culture)
    assert len(c.en) == len(c.native) == count and c.problems == []
    for e, n in zip(c.en, c.native):
        assert "_" not in e.statement() and e.answer in e.statement()
        assert len(e.options) == len(n.options) == 4


def test_every_problem_is_reported_and_skip_keeps_pairs_aligned(tmp_path):
    en = [
        GOOD,
        {"question": "No blank here.", "options": ["a", "b"], "answer": "a"},
        GOOD | {"answer": "Berlin"},
        GOOD | {"options": ["Lhasa", "Lhasa", "Rome", "Oslo"]},
        GOOD,
        GOOD | {"question": "Last ____ one."},
    ]
    xx = [GOOD_XX, GOOD_XX | {"options": ["ལྷ་ས", "པེ་རི"]}, GOOD_XX, GOOD_XX, GOOD_XX | {"options": ["ལྷ་ས", "པེ་རི", "རོམ"]}, GOOD_XX]
    d = write_pair(tmp_path, en, xx)
    with pytest.raises(InputError) as err:
        load_culture(str(d), "bo")
    # json.dumps(indent=1) puts item 0 on lines 2-11 (one line per option), item 1 on 12.
    assert err.value.path.endswith("bo-culture-cloze_en.json") and err.value.line == 12
    assert "item 1: no_blank" in str(err.value) and "and 3 more problems" in str(err.value)

    c = load_culture(str(d), "bo", on_invalid="skip")
    rep = c.report()
    assert rep["counts"] == {"no_blank": 1, "option_count_mismatch": 1, "answer_not_in_options": 1, "duplicate_options": 1}
    assert c.index == [0, 5] and rep["pairs_skipped"] == 4 and rep["pairs_kept"] == 2
    assert c.en[1].question == "Last ____ one." and c.native[1] == c.native[0]
    assert all(p["line"] >= 1 for p in rep["problems"])


def test_unequal_files_name_both_files_and_counts(tmp_path):
    d = write_pair(tmp_path, [GOOD, GOOD], [GOOD_XX])
    with pytest.raises(InputError, match=r"cloze_en.json has 2 questions, .*cloze_bo.json has 1"):
        load_culture(str(d), "bo", on_invalid="skip")


@pytest.mark.parametrize(
    "content,line,match",
    [
        ('[\n {"question": "a ____", "options": ["x", "y"], "answer": "x"},\n {"question": oops}\n]', 3, "invalid JSON"),
        ('[\n {"question": "a ____", "options": ["x", "y"], "answer": "x"}\n {"q": 1}\n]', 3, "invalid JSON"),
        ('[\n {"question": "a ____", "options": "x y", "answer": "x"}\n]', 2, "must be"),
        ('{"question": "a ____"}', 1, "JSON list"),
        ('[\n {"question": "a ____", "options": ["x", "y"], "answer": "x"}\n] trailing', 3, "extra data"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, content, line, match):
    p = tmp_path / "f.json"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=match) as err:
        read_probe_file(str(p))
    assert err.value.line == line and err.value.path == str(p)


def test_invalid_utf8_and_missing_file(tmp_path):
    p = tmp_path / "f.json"
    p.write_bytes(b'[\n{"question": "a ____ \xff", "options": ["x", "y"], "answer": "x"}\n]')
    with pytest.raises(InputError, match="invalid UTF-8") as err:
        read_probe_file(str(p))
    assert err.value.line == 2
    with pytest.raises(MissingPathError):
        read_probe_file(str(tmp_path / "absent.json"))


def test_fill_replaces_every_blank():
    from xcult.probes import ProbeItem

    it = ProbeItem("____ and ___ again", ["x", "y"], "y")
    assert it.fill("x") == "x and x again" and it.statement() == "y and y again" and it.answer_index == 1


@pytest.mark.parametrize("on_invalid", ["error", "skip"])
def test_a_culture_with_no_usable_items_is_an_error_naming_its_files(tmp_path, on_invalid):
    d = write_pair(tmp_path, [], [])
    with pytest.raises(InputError, match=r"bo-culture-cloze_en\.json and .*bo-culture-cloze_bo\.json: no usable probe items \(the files hold none\)"):
        load_culture(str(d), "bo", on_invalid=on_invalid)
    bad = GOOD | {"answer": "Berlin"}
    d = write_pair(tmp_path, [bad, bad], [GOOD_XX, GOOD_XX])
    with pytest.raises(InputError, match=r"no usable probe items \(all 2 were dropped by on_invalid = \"skip\"\)"):
        load_culture(str(d), "bo", on_invalid="skip")


def test_answers_at_different_option_indexes_are_counted_and_reported(tmp_path):
    moved = GOOD_XX | {"options": ["པེ་རི", "ལྷ་ས", "རོམ", "ཨོ་སི"]}  # the answer is option 1 here, 0 in English
    d = write_pair(tmp_path, [GOOD, GOOD, GOOD], [GOOD_XX, moved, moved])
    c = load_culture(str(d), "bo")
    assert c.answer_index_mismatch == [1, 2] and len(c.index) == 3
    assert c.report()["answer_index_mismatch"] == {"count": 2, "items": [1, 2]}
    (line,) = c.warnings()
    assert "2 of 3 items have their answer at a different option index" in line and "bo-culture-cloze_bo.json" in line
    assert load_culture(str(write_pair(tmp_path, [GOOD], [GOOD_XX])), "bo").warnings() == []


def test_list_valued_answers_one_is_read_more_is_an_error(tmp_path):
    """The paper's loader accepts `answer` as a list; xcult reads a one-element list as
    that answer and refuses several (its statistics pair one answer per item)."""
    d = write_pair(tmp_path, [GOOD | {"answer": ["Lhasa"]}], [GOOD_XX])
    assert load_culture(str(d), "bo").en[0].answer == "Lhasa"
    d = write_pair(tmp_path, [GOOD, GOOD | {"answer": ["Lhasa", "Rome"]}], [GOOD_XX, GOOD_XX])
    with pytest.raises(InputError, match=r"item 1 has 2 answers") as e:
        load_culture(str(d), "bo")
    assert e.value.path.endswith("bo-culture-cloze_en.json") and e.value.line is not None

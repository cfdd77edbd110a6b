"""Where probes come from: remote files through the retrying, hash-checked cache (a real
HTTP server on localhost), the pinned paper commit, and probe tables (Parquet, JSON
lines, a Hugging Face dataset through `datasets`)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading

import polars as pl
import pytest

import datasets  # noqa: F401  (a needed dependency: failing to import is a failure)
import pooch  # noqa: F401
from tests.conftest import PROBES
from tests.test_probes import GOOD, GOOD_XX, write_pair
from xcult import probes as probes_module
from xcult.errors import InputError, MissingPathError
from xcult.probes import PAPER_SHA256, load_culture

EN = [GOOD, GOOD | {"question": "The river is ____.", "answer": "Paris"}, GOOD | {"question": "____ is far.", "answer": "Oslo"}]
XX = [GOOD_XX, GOOD_XX | {"answer": "པེ་རི"}, GOOD_XX | {"answer": "ཨོ་སི"}]


class Server:
    """Serves a directory; the first `fail` requests answer 503. Records every path asked."""

    def __init__(self, root, fail=0):
        served = self
        self.requests, self.fail = [], fail

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(root), **k)

            def do_GET(self):
                served.requests.append(self.path)
                if served.fail > 0:
                    served.fail -= 1
                    self.send_error(503)
                    return
                super().do_GET()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def served(tmp_path, monkeypatch):
    (tmp_path / "site" / "data").mkdir(parents=True)
    write_pair(tmp_path / "site" / "data", EN, XX)
    monkeypatch.setenv("XCULT_CACHE", str(tmp_path / "cache"))
    s = Server(tmp_path / "site", fail=1)
    yield s
    s.close()


def test_remote_probes_download_once_with_a_retry(served):
    local = load_culture(served.url, "bo")
    assert [it.question for it in local.en] == [r["question"] for r in EN]
    assert served.requests.count("/data/bo-culture-cloze_en.json") == 2  # a 503, then the retry
    assert served.requests.count("/data/bo-culture-cloze_bo.json") == 1
    again = load_culture(served.url, "bo")  # another stage: read from the cache
    assert len(served.requests) == 3 and again.en == local.en


def test_pinned_files_must_have_their_hash(served, monkeypatch):
    site = served.url
    sha = {n: hashlib.sha256(json.dumps(items, indent=1, ensure_ascii=False).encode()).hexdigest() for n, items in (("bo-culture-cloze_en.json", EN), ("bo-culture-cloze_bo.json", XX))}
    monkeypatch.setattr(probes_module, "PAPER_PROBES", site)
    monkeypatch.setattr(probes_module, "PAPER_SHA256", sha | {"bo-culture-cloze_bo.json": "0" * 64})
    served.fail = 0
    with pytest.raises(InputError, match=r"bo-culture-cloze_bo\.json.*does not match the known hash"):
        load_culture(site, "bo")
    monkeypatch.setattr(probes_module, "PAPER_SHA256", sha)
    assert [it.answer for it in load_culture(site, "bo").native] == [r["answer"] for r in XX]


def test_an_unreachable_url_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("XCULT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingPathError, match=r"http://127\.0\.0\.1:9/x/bo-culture-cloze_en\.json: could not download"):
        load_culture("http://127.0.0.1:9/x", "bo")


def test_the_pinned_hashes_are_the_papers_files():
    if not (PROBES / "zh-culture-cloze_en.json").exists():
        pytest.skip("../shared/data/probes is absent")
    for f in PROBES.glob("*-culture-cloze_*.json"):
        assert hashlib.sha256(f.read_bytes()).hexdigest() == PAPER_SHA256[f.name], f.name


def table_rows(shuffle=True):
    rows = [{"culture": "bo", "lang": lang, "item": i, **r} for lang, items in (("en", EN), ("bo", XX)) for i, r in enumerate(items)]
    rows.append({"culture": "zh", "lang": "en", "item": 0, **GOOD})  # another culture's row is ignored
    return rows[::-1] if shuffle else rows


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_probe_table_loads_as_the_paper_files_do(tmp_path, suffix):
    path = tmp_path / f"probes{suffix}"
    frame = pl.DataFrame(table_rows())
    frame.write_parquet(path) if suffix == ".parquet" else frame.write_ndjson(path)
    files = load_culture(str(write_pair(tmp_path, EN, XX)), "bo")
    table = load_culture(str(path), "bo")
    assert (table.en, table.native, table.index) == (files.en, files.native, files.index)
    assert table.files == {"en": str(path), "bo": str(path)}


def test_a_bad_probe_table_names_the_place(tmp_path):
    path = tmp_path / "p.parquet"
    pl.DataFrame([{k: v for k, v in r.items() if k != "lang"} for r in table_rows()]).write_parquet(path)
    with pytest.raises(InputError, match=r"p\.parquet: a probe table needs the columns .*\(missing lang\)"):
        load_culture(str(path), "bo")
    rows = table_rows(shuffle=False)
    rows[1]["options"] = ["Lhasa"]  # one option: row 2 of the table
    path = tmp_path / "q.parquet"
    pl.DataFrame(rows).write_parquet(path)
    with pytest.raises(InputError) as e:
        load_culture(str(path), "bo")
    assert e.value.line == 2 and str(path) in str(e.value)


def test_a_hugging_face_dataset_loads_through_datasets(tmp_path, monkeypatch):
    """The dataset code path of `hf://datasets/...`: `datasets.load_dataset` on a dataset
    directory (a hub id takes the same call where the hub is reachable)."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    repo = tmp_path / "org" / "culture-probes"
    (repo / "data").mkdir(parents=True)
    pl.DataFrame(table_rows()).write_parquet(repo / "data" / "train-00000-of-00001.parquet")
    got = load_culture(f"hf://datasets/{repo}", "bo")
    files = load_culture(str(write_pair(tmp_path, EN, XX)), "bo")
    assert (got.en, got.native) == (files.en, files.native)

"""The script filter alone, one thread, on `benchmarks/corpora.py`'s generated corpora
(each with stray text of other scripts): MB/s of input, best of 3.

    python benchmarks/bench_filter.py [--en-mb 100] [--zh-mb 50] [--work bench_out/filter]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.corpora import generate, keep_script  # noqa: E402
from xcult import _core  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--en-mb", type=int, default=100)
    ap.add_argument("--zh-mb", type=int, default=50)
    ap.add_argument("--work", type=Path, default=Path("bench_out/filter"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for lang, mb in (("en", args.en_mb), ("zh", args.zh_mb), ("zh-uniform", args.zh_mb), ("ko", args.zh_mb), ("bo", args.zh_mb)):
        keep = [keep_script(lang)]
        joined = args.work / f"{lang}-{mb}.txt"  # one document per line, as the engine sees them
        if not joined.exists():
            with open(joined, "w", encoding="utf-8") as f:
                for p in generate(args.work / lang, mb, lang, 0):
                    for line in open(p, encoding="utf-8"):
                        f.write(json.loads(line)["text"] + "\n")
        runs = [_core.time_script_filter(str(joined), keep) for _ in range(3)]
        best = max(r["bytes_in"] / r["seconds"] for r in runs)
        kept = runs[0]["bytes_out"] / runs[0]["bytes_in"]
        print(f"{lang}: {runs[0]['bytes_in'] / 1e6:.0f} MB, keep {keep[0]}: {best / 1e6:,.0f} MB/s (best of 3), {kept:.1%} of bytes kept")


if __name__ == "__main__":
    main()

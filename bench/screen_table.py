#!/usr/bin/env python3
"""The screening record (results/screening: one JSON line per seed from bench/torch_twin.py, and
index.tsv with each screen's pixels and flags) as a markdown table, for results/README.md.

    python3 bench/screen_table.py results/screening
"""
import json
import statistics as st
import sys
from pathlib import Path


def main(folder):
    folder = Path(folder)
    rows = [line.split("\t") for line in (folder / "index.tsv").read_text().splitlines()[1:]]
    print("| screen | pixels, then torch_twin.py flags | seeds | F1 without | F1 with | gain, mean ± sd | smallest gain | seeds gaining ≥ 0.3 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, flags in rows:
        seeds = [json.loads(l) for l in (folder / f"{name}.jsonl").read_text().splitlines()]
        gains = [s["gain"] for s in seeds]
        sd = st.stdev(gains) if len(gains) > 1 else 0.0
        print(f"| {name} | `{flags}` | {len(seeds)} | {st.mean(s['without'] for s in seeds):.2f} | {st.mean(s['with'] for s in seeds):.2f} "
              f"| {st.mean(gains):+.2f} ± {sd:.2f} | {min(gains):+.2f} | {sum(g >= 0.3 for g in gains)}/{len(gains)} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/screening")

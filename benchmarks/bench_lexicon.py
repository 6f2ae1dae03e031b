"""Lexicon lookup speed: 10,000 lookups in a 1,000-entry lexicon (target: under a second).

    python benchmarks/bench_lexicon.py [--entries 1000] [--lookups 10000]

Builds a lexicon index.csv of made-up glosses (a fifth of them with umlauts, a few
languages and duplicate rows of different priority) in a temporary folder, then times
``Lexicon.from_csv`` and a mix of hits in exact case, other case, PHOENIX umlaut spelling,
and misses. Lookups never touch clip files, so none are written.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from signgen.poses.lexicon import COLUMNS, Lexicon

SYLLABLES = ["MOR", "GEN", "RE", "NORD", "WEST", "SÜD", "KÖNN", "WÄRM", "GROß", "TAG", "NACHT", "SCHÖN", "WIND", "SCHNEE"]


def make_glosses(count: int, rng: random.Random) -> list[str]:
    return ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) + str(i) for i in range(count)]


def phoenix_spelling(gloss: str) -> str:
    return gloss.replace("Ä", "AE").replace("Ö", "OE").replace("Ü", "UE").replace("ß", "SS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    glosses = make_glosses(args.entries, rng)
    with tempfile.TemporaryDirectory() as folder:
        index = Path(folder) / "index.csv"
        rows = [",".join(COLUMNS)]
        for i, gloss in enumerate(glosses):
            language = "gsg" if i % 10 else "sgg"
            rows.append(f"clips/{i}.pose,de,{language},0,0,{gloss.lower()},{gloss},{i % 3}")
        index.write_text("\n".join(rows) + "\n", encoding="utf-8")
        start = time.perf_counter()
        lexicon = Lexicon.from_csv(index)
        load_seconds = time.perf_counter() - start

    queries = []
    for _ in range(args.lookups):
        gloss = rng.choice(glosses)
        queries.append(rng.choice([gloss, gloss.lower(), phoenix_spelling(gloss), gloss + "X"]))
    start = time.perf_counter()
    hits = sum(lexicon.lookup(query, "gsg") is not None for query in queries)
    lookup_seconds = time.perf_counter() - start
    print(f"lexicon of {len(lexicon)} entries read in {load_seconds * 1000:.1f} ms")
    print(f"{args.lookups} lookups in {lookup_seconds * 1000:.1f} ms ({lookup_seconds / args.lookups * 1e6:.2f} us each), "
          f"{hits} hits: {'under' if lookup_seconds < 1 else 'OVER'} the 1 s target")


if __name__ == "__main__":
    main()

"""Rebuild this fixture from the shared fingerspelling clips (run from the repository root):

    python tests/data/lexicon/make_fixture.py ../shared/data/fingerspelling

Copies the DGS (gsg) letters the stitching tests spell, reduced to the 178-point set to
keep them small, with their original index.csv rows (start/end untouched) and the MIT
notice of the source.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from signgen.poses.holistic import reduce_to_178
from signgen.poses.io import read_pose, write_pose

LETTERS = ("H", "A", "L", "O", "ö")
HERE = Path(__file__).parent


def main(source: Path) -> None:
    with open(source / "index.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames
        rows = [row for row in reader if row["signed_language"] == "gsg" and row["glosses"] in LETTERS]
    (HERE / "gsg").mkdir(exist_ok=True)
    for row in rows:
        write_pose(reduce_to_178(read_pose(source / row["path"])), HERE / row["path"])
    with open(HERE / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    shutil.copyfile(source / "LICENSE", HERE / "LICENSE")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/fingerspelling"))

"""Writes this folder's tiny PHOENIX-2014T fixture: the official layout with real rows of the
corpus CSVs (name|video|start|end|speaker|orth|translation, as released by RWTH) and, per
video, three small stand-in frames (the real frames are 43 GB and CC BY-NC-SA).

Each video's frames share one background colour (``VIDEO_COLORS``) and show a white square
that moves one step right per frame, so a test can tell videos and frames apart by their
pixels. Run from the repository root: ``python tests/data/phoenix/make_fixture.py``.
"""

from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).parent
HEADER = "name|video|start|end|speaker|orth|translation"
ROWS = {
    "train": [
        "11August_2010_Wednesday_tagesschau-1|11August_2010_Wednesday_tagesschau-1/1/*.png|-1|-1|Signer08|JETZT WETTER MORGEN DONNERSTAG ZWOELF FEBRUAR|und nun die wettervorhersage für morgen donnerstag den zwölften august",
        "11August_2010_Wednesday_tagesschau-4|11August_2010_Wednesday_tagesschau-4/1/*.png|-1|-1|Signer08|ORT REGEN DURCH REGEN KOENNEN UEBERSCHWEMMUNG KOENNEN|mancherorts regnet es auch länger und ergiebig auch lokale überschwemmungen sind wieder möglich",
    ],
    "dev": [
        "11August_2010_Wednesday_tagesschau-2|11August_2010_Wednesday_tagesschau-2/1/*.png|-1|-1|Signer08|DRUCK TIEF KOMMEN|tiefer luftdruck bestimmt in den nächsten tagen unser wetter",
        "26January_2010_Tuesday_heute-107|26January_2010_Tuesday_heute-107/1/*.png|-1|-1|Signer03|SCHOEN ABEND WUENSCHEN|jetzt wünsche ich ihnen noch einen schönen abend",
    ],
    "test": [
        "25October_2010_Monday_tagesschau-17|25October_2010_Monday_tagesschau-17/1/*.png|-1|-1|Signer01|REGEN SCHNEE REGION VERSCHWINDEN NORD REGEN KOENNEN REGION STERN KOENNEN SEHEN|regen und schnee lassen an den alpen in der nacht nach im norden und nordosten fallen hier und da schauer sonst ist das klar",
    ],
}
FRAMES_PER_VIDEO = 3
WIDTH, HEIGHT = 210, 260
SQUARE = 20
VIDEO_COLORS = [(40, 60, 90), (90, 40, 60), (60, 90, 40), (120, 120, 40), (40, 120, 120)]


def frame(color, index):
    image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    image[:] = color
    left = 40 + 30 * index
    image[120:120 + SQUARE, left:left + SQUARE] = 255
    return image


def main():
    manual = ROOT / "annotations" / "manual"
    manual.mkdir(parents=True, exist_ok=True)
    video = 0
    for split, rows in ROWS.items():
        (manual / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
        for row in rows:
            folder = ROOT / "features" / "fullFrame-210x260px" / split / row.split("|")[0]
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(FRAMES_PER_VIDEO):
                Image.fromarray(frame(VIDEO_COLORS[video], index)).save(folder / f"images{index + 1:04d}.png", optimize=True)
            video += 1


if __name__ == "__main__":
    main()

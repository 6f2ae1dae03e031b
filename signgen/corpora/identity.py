"""Who a SynthSign cartoon signer is: skin, hair, eyes, garment and background colours,
drawn at random so that each stands out from the background (:meth:`Identity.sample`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from signgen.errors import SigngenError

PATTERNS = ("solid", "stripes", "checks", "dots", "letters")
HAIR_STYLES = ("short", "long", "bun")

Color = tuple[int, int, int]

# Fitzpatrick-like skin tones, light to dark (RGB).
SKIN_TONES: tuple[Color, ...] = ((255, 224, 196), (245, 206, 170), (234, 192, 150), (224, 172, 120),
                                 (198, 140, 90), (170, 115, 75), (141, 90, 55), (110, 70, 45), (84, 55, 38))
HAIR_COLORS: tuple[Color, ...] = ((28, 24, 24), (58, 40, 30), (102, 70, 45), (150, 90, 50), (200, 165, 100),
                                  (226, 200, 140), (165, 60, 30), (170, 170, 170), (235, 235, 230))
EYE_COLORS: tuple[Color, ...] = ((75, 50, 30), (110, 75, 40), (60, 100, 150), (80, 120, 80), (110, 110, 120))


@dataclass(frozen=True)
class Identity:
    """How one cartoon signer looks (colours RGB 0-255)."""

    skin: Color
    hair: Color
    hair_style: str
    eyes: Color
    garment: Color
    garment_accent: Color
    pattern: str
    pattern_scale: int  # period of the pattern in pixels
    pattern_text: str  # the letters printed by the "letters" pattern
    background: Color

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise SigngenError(f"unknown garment pattern {self.pattern!r} (one of {', '.join(PATTERNS)})")
        if self.hair_style not in HAIR_STYLES:
            raise SigngenError(f"unknown hair style {self.hair_style!r} (one of {', '.join(HAIR_STYLES)})")
        if self.pattern_scale < 2:
            raise SigngenError(f"pattern scale must be at least 2 pixels, got {self.pattern_scale}")

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Identity":
        """A random signer whose garment, skin and hair stand out from the background."""
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))]
        hair = HAIR_COLORS[rng.integers(len(HAIR_COLORS))]
        while True:
            hue = rng.random()
            garment = hsv(hue, rng.uniform(0.35, 0.9), rng.uniform(0.25, 0.85))
            accent = hsv((hue + rng.uniform(0.3, 0.7)) % 1.0, rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.0))
            background = hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.45, 0.95))
            if min(distance(background, other) for other in (skin, hair, garment)) > 70 and distance(garment, accent) > 60:
                break
        letters = "".join(chr(ord("A") + int(i)) for i in rng.integers(26, size=3))
        return cls(skin=skin, hair=hair, hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
                   eyes=EYE_COLORS[rng.integers(len(EYE_COLORS))], garment=garment, garment_accent=accent,
                   pattern=PATTERNS[rng.integers(len(PATTERNS))], pattern_scale=int(rng.integers(7, 15)),
                   pattern_text=letters, background=background)

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Identity":
        names = {f.name for f in fields(cls)}
        if set(data) != names:
            raise SigngenError(f"signer identity needs exactly the fields {', '.join(sorted(names))}")
        return cls(**{key: tuple(int(c) for c in value) if isinstance(value, list) else value for key, value in data.items()})


def hsv(hue: float, saturation: float, value: float) -> Color:
    pixel = np.array([[[hue * 180, saturation * 255, value * 255]]], dtype=np.float32).round().astype(np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(pixel, cv2.COLOR_HSV2RGB)[0, 0])


def distance(a: Color, b: Color) -> float:
    return float(np.linalg.norm(np.subtract(a, b, dtype=np.float64)))


def shade(color: Color, factor: float) -> Color:
    return tuple(int(round(min(255.0, c * factor))) for c in color)


def mix(a: Color, b: Color, weight: float) -> Color:
    return tuple(int(round(x * (1 - weight) + y * weight)) for x, y in zip(a, b))

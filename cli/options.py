"""One place that validates the numbers given on the command line.

Each function here is an argparse ``type=``: it turns the option's text into a value or
raises ``argparse.ArgumentTypeError`` with a one-line reason, which ``signgen.cli.main``
prints as ``signgen: error: argument --fps: ...`` (exit code 2). No option accepts NaN or
infinity; every count and length has a range that names its limit. The library checks the
same bounds again where a value enters it (``signgen.config``, ``signgen.pipelines``,
``signgen.poses``), so the API refuses what the command line refuses.

Negative numbers (``--guidance -5,-5``) are values, not options: the parser of
``signgen.cli.main`` reads any argument that starts with a minus and a digit (or
``-inf``/``-nan``) as a value.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

from signgen.config import MAX_SEED

# The longest echo of user input in a message.
ECHO_LIMIT = 80


def echo(text: object, limit: int = ECHO_LIMIT) -> str:
    """``repr`` of user input for a message, cut to ``limit`` characters with an ellipsis."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _number(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {echo(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {echo(text)}")
    return value


def finite_float(text: str) -> float:
    """Any finite number."""
    return _number(text)


def positive_float(text: str) -> float:
    """A finite number greater than 0 (a frame rate)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {echo(text)}")
    return value


def float_in(low: float, high: float, unit: str = "") -> Callable[[str], float]:
    """A finite number from ``low`` to ``high`` (both included)."""
    suffix = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        value = _number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low:g} to {high:g}{suffix}, got {echo(text)}")
        return value

    parse.__name__ = "number"
    return parse


def strength(text: str) -> float:
    """A share in (0, 1]: how far into the noise schedule a render starts from the photo."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, got {echo(text)}")
    return value


def share(text: str) -> float:
    """A number from 0 to 1 (both included)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {echo(text)}")
    return value


def int_in(low: int, high: int) -> Callable[[str], int]:
    """A whole number from ``low`` to ``high`` (both included)."""

    def parse(text: str) -> int:
        try:
            value = int(str(text).strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {echo(text)}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {echo(text)}")
        return value

    parse.__name__ = "integer"
    return parse


seed = int_in(0, MAX_SEED)
seed.__doc__ = "A random seed, 0 to 2**63 - 1."


def guidance_pair(text: str) -> tuple[float, float]:
    """``A,F``: the appearance and full guidance scales (their range is the render settings' to check)."""
    parts = str(text).split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"guidance needs two numbers A,F (appearance, full), e.g. 1.5,2.0; got {echo(text)}") from None

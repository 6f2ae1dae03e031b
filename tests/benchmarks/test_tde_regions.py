"""benchmarks/bench_tde_regions.py: the shares of TDE it reports add up to it and land where the change is."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from bench_tde_regions import tde_shares  # noqa: E402


def test_the_shares_sum_to_the_tde_and_name_where_the_change_is_wrong():
    reference = np.zeros((3, 20, 20, 3), np.uint8)
    reference[1:, 2:6, 2:6] = 200  # the reference moves in the top left corner
    generated = np.zeros_like(reference)
    generated[1:, 14:18, 14:18] = 200  # the render moves elsewhere
    generated[2, 10, 10] = 4  # and flickers a little where nothing moves
    hands = np.zeros((3, 20, 20), bool)
    shares = tde_shares(generated, reference, hands, threshold=8.0)
    assert np.isclose(sum(shares[k] for k in ("hands", "ref moves", "only ours", "neither")), shares["tde"])
    assert shares["hands"] == 0 and np.isclose(shares["ref moves"], shares["only ours"]) and shares["neither"] > 0
    hands[:, 0:8, 0:8] = True  # the reference's motion inside a hand box
    moved = tde_shares(generated, reference, hands, threshold=8.0)
    assert np.isclose(moved["hands"], shares["ref moves"]) and moved["ref moves"] == 0

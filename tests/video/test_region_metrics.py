"""Hand-box and moving-region metrics (signgen.video.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.video.metrics import moving_region_psnr, psnr, region_psnr, region_ssim, ssim_rgb


@pytest.fixture
def clip():
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 256, (4, 40, 30, 3), dtype=np.uint8)
    generated = reference.copy()
    generated[:, 20:30, 10:20] = 0  # wrong only inside one box
    return generated, reference


def test_region_metrics_see_only_their_boxes(clip):
    generated, reference = clip
    inside = [[(10, 20, 20, 30)]] * 4
    outside = [[(0, 0, 10, 12)]] * 4
    assert region_psnr(generated, reference, outside) == 100.0
    assert region_ssim(generated, reference, outside) == pytest.approx(1.0)
    assert region_psnr(generated, reference, inside) < 10
    assert region_ssim(generated, reference, inside) < 0.1
    whole = psnr(generated, reference)
    assert region_psnr(generated, reference, inside) < whole < 100
    # A box of one frame only; frames without a box do not count; no box at all is None.
    assert region_ssim(generated, reference, [[(10, 20, 20, 30)], [], [], []]) == pytest.approx(
        ssim_rgb(generated[:1, 20:31, 10:21], reference[:1, 20:31, 10:21]), abs=0.05)
    assert region_psnr(generated, reference, [[], [], [], []]) is None
    with pytest.raises(SigngenError, match="frames of boxes"):
        region_ssim(generated, reference, inside[:2])


def test_tiny_and_edge_boxes_are_grown_inside_the_frame(clip):
    generated, reference = clip
    assert region_psnr(generated, reference, [[(29, 0, 30, 1)]] * 4) == 100.0  # grown to cols 19-29, rows 0-10
    assert region_ssim(generated, reference, [[(-5, -5, 2, 2)]] * 4) == pytest.approx(1.0)


def test_moving_region_psnr_scores_where_the_signer_moved():
    rng = np.random.default_rng(4)
    source = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    reference = np.repeat(source[None], 3, axis=0)
    reference[1:, 8:16, 8:16] = 255 - reference[1:, 8:16, 8:16]  # the hand moved here
    copy = np.repeat(source[None], 3, axis=0)
    assert moving_region_psnr(reference, reference, source) == 100.0
    assert moving_region_psnr(copy, reference, source) < 10  # copying scores low where it moved
    assert psnr(copy, reference) > moving_region_psnr(copy, reference, source)
    assert moving_region_psnr(copy[:1], reference[:1], source) is None  # no motion in frame 0
    with pytest.raises(SigngenError, match="source frame"):
        moving_region_psnr(copy, reference, source[:10])

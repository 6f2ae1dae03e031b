"""Hand-box and moving-region metrics (signgen.video.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.video.metrics import (box_masks, moving_masks, moving_region_psnr, psnr, region_psnr, region_ssim,
                                   region_temporal_difference_error, ssim_rgb, temporal_difference_error)


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


def flickering_hand():
    """A still picture whose 'hand' box flickers in the generated video only."""
    rng = np.random.default_rng(5)
    still = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)
    reference = np.repeat(still[None], 6, axis=0)
    reference[:, 10:20, 30:40] = 200  # the hand, held still in the reference
    generated = reference.copy()
    generated[::2, 10:20, 30:40] = 80  # ... and flickering in the generated video
    return generated, reference, [[(30, 10, 40, 20)]] * 6


def test_a_still_background_cannot_hide_flickering_hands():
    generated, reference, boxes = flickering_hand()
    whole = temporal_difference_error(generated, reference)
    hands = region_temporal_difference_error(generated, reference, box_masks(boxes, 60, 50))
    assert 0 < whole < 5
    assert hands > 10 * whole  # 120 inside the 10 x 10 hand, over the grown 11 x 11 box
    assert hands == pytest.approx(120 * 100 / 121, rel=1e-5)


def test_region_temporal_difference_over_every_pixel_is_the_whole_frame_one():
    generated, reference, _ = flickering_hand()
    everywhere = np.ones(reference.shape[:3], dtype=bool)
    assert region_temporal_difference_error(generated, reference, everywhere) == pytest.approx(
        temporal_difference_error(generated, reference), rel=1e-6)
    assert region_temporal_difference_error(generated, reference, ~everywhere) is None


def test_the_moving_region_is_where_the_reference_left_its_source():
    generated, reference, _ = flickering_hand()
    source = reference[0].copy()
    source[40:50, 0:10] = 0  # the reference's arm moved away from here
    masks = moving_masks(reference, source)
    assert masks.shape == reference.shape[:3]
    assert masks[:, 40:50, 0:10].all() and masks.sum() == 6 * 100
    with pytest.raises(SigngenError, match="masks must be"):
        region_temporal_difference_error(generated, reference, masks[:-1])

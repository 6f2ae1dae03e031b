"""The deflickering filter: shimmer averaged away over time, motion kept sharp."""

from __future__ import annotations

import math

import pytest
import torch

from signgen.errors import SigngenError
from signgen.pipelines.deflicker import deflicker


def still_scene_with_noise(frames=24, amplitude=0.04, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """A still textured picture (values in [-1, 1]) and the same with fresh noise each frame
    (a few grey levels, as a frame model's own noise)."""
    generator = torch.Generator().manual_seed(seed)
    scene = torch.rand(1, 3, 32, 24, generator=generator) * 1.6 - 0.8
    noise = amplitude * torch.randn(frames, 3, 32, 24, generator=generator)
    return scene, scene + noise


def moving_bar(frames=12, speed=3) -> torch.Tensor:
    """A bright bar crossing a dark picture, ``speed`` pixels a frame."""
    video = -torch.ones(frames, 3, 32, 48)
    for t in range(frames):
        video[t, :, :, 2 + speed * t: 6 + speed * t] = 1.0
    return video


def frame_to_frame_change(video: torch.Tensor) -> float:
    return float(torch.diff(video, dim=0).abs().mean())


def test_width_zero_returns_the_frames_untouched():
    _, video = still_scene_with_noise()
    assert deflicker(video, 0) is video


def test_shimmer_on_a_still_picture_is_averaged_away_over_time():
    scene, video = still_scene_with_noise()
    filtered = deflicker(video, 4.0)
    assert frame_to_frame_change(filtered) < 0.3 * frame_to_frame_change(video)
    # It converges on the picture itself, not on some blur of it.
    assert float((filtered - scene).abs().mean()) < 0.4 * float((video - scene).abs().mean())


def test_a_moving_edge_keeps_its_place_and_sharpness():
    video = moving_bar()
    filtered = deflicker(video, 6.0)
    assert float((filtered - video).abs().max()) < 0.05
    assert frame_to_frame_change(filtered) == pytest.approx(frame_to_frame_change(video), rel=0.02)


def test_the_filter_looks_both_ways_and_only_at_frames_that_exist():
    _, video = still_scene_with_noise(frames=9)
    filtered = deflicker(video, 3.0)
    backwards = deflicker(video.flip(0), 3.0).flip(0)
    assert torch.allclose(filtered, backwards, atol=1e-5)
    # Two frames: each is the weighted mean of the pair, the same weight both ways.
    pair = video[:2]
    out = deflicker(pair, 3.0)
    assert torch.allclose(out[0] + out[1], pair[0] + pair[1], atol=1e-5)
    assert frame_to_frame_change(out) < frame_to_frame_change(pair)


def test_the_frames_dtype_is_kept():
    _, video = still_scene_with_noise(frames=4)
    assert deflicker(video.double(), 2.0).dtype == torch.float64


@pytest.mark.parametrize("width", [-1.0, math.nan, math.inf, 26.0, True, "6"])
def test_a_bad_width_is_one_line_naming_the_setting(width):
    """The width's one check is the render setting's (the filter takes checked settings)."""
    from signgen.pipelines.settings import RenderSettings

    with pytest.raises(SigngenError, match="render setting deflicker") as error:
        RenderSettings(deflicker=width)
    assert "\n" not in str(error.value)


def test_a_tiny_width_filters_nothing_visible_and_does_not_overflow():
    _, video = still_scene_with_noise(frames=4)
    assert torch.allclose(deflicker(video, 1e-300), video)


def test_a_render_call_overrides_the_pipelines_width(tiny_pipelines):
    import numpy as np

    from signgen.pipelines.pipeline import load_pipeline

    pipeline = load_pipeline(tiny_pipelines["frame_only"])
    own = pipeline.settings.deflicker
    assert own == 4.0  # the shipped default
    plain = pipeline(glosses="A", seed=2, deflicker=0, progress=False).frames
    default = pipeline(glosses="A", seed=2, progress=False).frames
    assert default.shape == plain.shape and not np.array_equal(default, plain)
    assert np.array_equal(default, pipeline(glosses="A", seed=2, deflicker=own, progress=False).frames)
    calmed = pipeline(glosses="A", seed=2, deflicker=3, progress=False).frames
    assert calmed.shape == plain.shape and not np.array_equal(calmed, plain) and not np.array_equal(calmed, default)
    with pytest.raises(SigngenError, match="render setting deflicker"):
        pipeline(glosses="A", seed=2, deflicker=-1, progress=False)


@pytest.mark.parametrize("value", ["-1", "26", "nan", "x"])
def test_render_refuses_a_bad_deflicker_in_one_line(tiny_pipelines, run_cli, cli_error_line, tmp_path, value):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], f"--deflicker={value}", "-o", out)
    line = cli_error_line(err)
    # Text that is no number is the flag's to refuse; a number out of range the settings'.
    expected = {"x": "argument --deflicker", "nan": "render setting deflicker must be a finite number, not nan",
                "-1": "must be from 0 to 25, not -1.0", "26": "must be from 0 to 25, not 26.0"}[value]
    assert code == 2 and expected in line
    assert line.startswith("signgen: error: render setting deflicker") or value == "x"
    assert not out.exists()


def test_a_moving_hand_of_nearly_the_backgrounds_colour_is_left_whole_where_kept():
    # A hand before a face: a few grey levels apart, well inside the range weight.
    video = torch.full((12, 3, 32, 48), 0.30)
    keep = torch.zeros(12, 32, 48, dtype=torch.bool)
    for t in range(12):
        video[t, :, 10:18, 2 + 3 * t: 8 + 3 * t] = 0.40
        keep[t, 8:20, 3 * t: 10 + 3 * t] = True
    ghosted = deflicker(video, 6.0)
    assert float((ghosted - video).abs().max()) > 0.05  # without keep the hand fades into the face
    kept = deflicker(video, 6.0, moving_limbs=keep)
    assert torch.equal(kept[keep[:, None].expand_as(video)], video[keep[:, None].expand_as(video)])
    # Where the hand passed but is gone, the face is not darkened or lightened by it either.
    assert float((kept - video).abs().max()) < 1e-5
    with pytest.raises(SigngenError, match="moving_limbs must be"):
        deflicker(video, 6.0, moving_limbs=keep[:4])

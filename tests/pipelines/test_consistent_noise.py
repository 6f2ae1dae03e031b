"""Consistent initial noise: shared across frames and windows, and still one seed, one video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from signgen.errors import SigngenError
from signgen.pipelines.denoising import InitialNoise


def draw(correlation: float, frames: int = 6, seed: int = 0) -> torch.Tensor:
    return InitialNoise(seed, frames, (3, 16, 16), correlation).frames(0, frames)


def test_no_correlation_is_the_independent_noise_of_before():
    assert torch.equal(draw(0.0), torch.randn((6, 3, 16, 16), generator=torch.Generator().manual_seed(0)))


def test_full_correlation_is_one_noise_for_every_frame():
    noise = draw(1.0)
    assert all(torch.equal(noise[0], frame) for frame in noise[1:])


def test_the_correlation_between_frames_is_the_one_asked_for():
    noise = draw(0.6, frames=2).flatten(1)
    for frame in noise:  # each frame still unit-variance noise
        assert abs(frame.std().item() - 1.0) < 0.05
    assert abs(torch.corrcoef(noise)[0, 1].item() - 0.6) < 0.05


@pytest.mark.parametrize("correlation", [-0.1, 1.5, float("nan"), True])
def test_a_correlation_outside_zero_to_one_is_refused(correlation):
    """Checked once, by the render settings (initial_noise takes checked settings)."""
    from signgen.pipelines.settings import RenderSettings

    with pytest.raises(SigngenError, match="render setting noise_correlation") as error:
        RenderSettings(noise_correlation=correlation)
    assert "\n" not in str(error.value)


def test_a_pipeline_renders_one_video_per_seed_with_consistent_noise(tiny_pipelines):
    from signgen.pipelines.pipeline import load_pipeline

    pipeline = load_pipeline(tiny_pipelines["with_adapter"])
    first = pipeline(glosses="A", seed=4, noise_correlation=0.8, progress=False).frames
    again = pipeline(glosses="A", seed=4, noise_correlation=0.8, progress=False).frames
    independent = pipeline(glosses="A", seed=4, noise_correlation=0.0, progress=False).frames
    assert np.array_equal(first, again)
    assert not np.array_equal(first, independent)
    # The pipeline's own setting (the shipped default, 0.5) is what a render without one uses.
    own = pipeline.settings.noise_correlation
    assert own not in (0.0, 0.8)
    assert np.array_equal(pipeline(glosses="A", seed=4, progress=False).frames,
                          pipeline(glosses="A", seed=4, noise_correlation=own, progress=False).frames)
    assert not np.array_equal(pipeline(glosses="A", seed=4, progress=False).frames, independent)


def test_a_pipeline_setting_outside_zero_to_one_is_refused(tiny_pipelines):
    from signgen.pipelines.pipeline import load_pipeline
    from signgen.pipelines.settings import RenderSettings

    with pytest.raises(SigngenError, match="noise_correlation"):
        RenderSettings(noise_correlation=2.0)
    with pytest.raises(SigngenError, match="render setting noise_correlation"):
        load_pipeline(tiny_pipelines["frame_only"])(glosses="A", noise_correlation=-0.1, progress=False)


@pytest.mark.parametrize("value", ["-1", "1.01", "nan", "x"])
def test_the_render_option_outside_zero_to_one_is_one_line(tiny_pipelines, tmp_path, run_cli, cli_error_line, value):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], f"--noise-correlation={value}", "-o", out)
    line = cli_error_line(err)
    # Text that is no number is the flag's to refuse; a number out of range the settings'.
    expected = "argument --noise-correlation" if value == "x" else "render setting noise_correlation"
    assert code == 2 and expected in line
    assert not out.exists()


def test_a_pipeline_saved_before_the_newer_settings_existed_loads_rendering_as_it_did(tiny_pipelines, tmp_path):
    import json
    import shutil

    from signgen.pipelines.pipeline import load_pipeline

    # The settings newer than the first pipelines, as a pipeline.json of that time lacks them.
    added = ("noise_correlation", "keep_coarse", "steady_torso", "deflicker", "strength")
    folder = shutil.copytree(tiny_pipelines["frame_only"], tmp_path / "old")
    settings = json.loads((folder / "pipeline.json").read_text())
    for name in added:
        settings.pop(name)
    (folder / "pipeline.json").write_text(json.dumps(settings))
    loaded = load_pipeline(folder).settings
    assert (loaded.noise_correlation, loaded.keep_coarse, loaded.steady_torso, loaded.deflicker, loaded.strength) == (0.0, False, 0.0, 0.0, 1.0)

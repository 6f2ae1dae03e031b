"""Hostile model folders and pipeline settings (issue 17, items 3, 4, 5 and 14 of the
follow-up sweep), on tiny random-weight pipelines: a damaged noise-scheduler config, a
temporal adapter holding another module's weights and settings every render would refuse
are one error line when the model is loaded or assembled (exit code 2, no traceback,
nothing written); a non-finite sample names its likely cause; and an error after progress
bars starts a line of its own."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import load_adapter
from signgen.pipelines.pipeline import load_pipeline
from signgen.pipelines.settings import RenderSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SCHEDULER_CONFIG = ("frame_model", "scheduler", "scheduler_config.json")
WEIGHTS = "diffusion_pytorch_model.safetensors"


def copy_of(tiny_pipelines, name: str, tmp_path):
    folder = tmp_path / name
    shutil.copytree(tiny_pipelines[name], folder)
    return folder


def edit_json(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def error_after_bars(err: str) -> str:
    """The error line of a command that drew progress bars: the only ``signgen:`` text, and
    a line of its own (the bars' carriage-return redraws end before it)."""
    assert "Traceback" not in err and err.count("signgen:") == 1, err
    lines = [line for line in err.split("\n") if line.strip()]
    assert lines[-1].startswith("signgen: error: "), err
    return lines[-1]


def render(run_cli, model, tmp_path, *extra):
    return run_cli("render", "--gloss", "A", "--model", model, "--steps", 1, "-o", tmp_path / "out.mp4", *extra)


# ------------------------------------------------------------ item 3: the noise-scheduler config

BAD_SCHEDULES = [
    ({"prediction_type": "bogus"}, "prediction_type"),
    ({"beta_end": -0.5}, "beta_end"),
    ({"beta_start": float("nan")}, "beta_start"),  # json writes NaN
    ({"beta_start": 0.5, "beta_end": 0.01}, "beta_start"),
    ({"beta_end": 1.5}, "beta_end"),
    ({"beta_schedule": "cubic"}, "beta_schedule"),
    ({"num_train_timesteps": 0}, "num_train_timesteps"),
    ({"num_train_timesteps": 10.5}, "num_train_timesteps"),
    ({"timestep_spacing": "sideways"}, "timestep_spacing"),
    ({"variance_type": "huge"}, "variance_type"),
    ({"trained_betas": [0.5, -1.0]}, "trained_betas"),
    ({"clip_sample": "yes"}, "clip_sample"),
    ({"steps_offset": -3}, "steps_offset"),
]


@pytest.mark.parametrize("changes, field", BAD_SCHEDULES, ids=[field for _, field in BAD_SCHEDULES])
def test_a_bad_noise_schedule_is_refused_when_the_frame_model_loads(changes, field, tiny_pipelines, tmp_path):
    folder = copy_of(tiny_pipelines, "frame_only", tmp_path)
    edit_json(folder.joinpath(*SCHEDULER_CONFIG), **changes)
    with pytest.raises(SigngenError, match=field) as raised:
        FrameModel.from_pretrained(folder / "frame_model")
    assert "scheduler_config.json" in str(raised.value)


@pytest.mark.parametrize("changes, field", BAD_SCHEDULES[:2], ids=["prediction_type", "beta_end"])
def test_render_with_a_bad_noise_schedule_is_one_line_naming_the_file(changes, field, tiny_pipelines, tmp_path,
                                                                       run_cli, cli_error_line):
    folder = copy_of(tiny_pipelines, "frame_only", tmp_path / "model")
    edit_json(folder.joinpath(*SCHEDULER_CONFIG), **changes)
    code, out, err = render(run_cli, folder, tmp_path)
    line = cli_error_line(err)
    assert code == 2 and "scheduler_config.json" in line and field in line and "weights" not in line
    assert not (tmp_path / "out.mp4").exists()


def test_the_tiny_pipelines_noise_schedules_still_load(tiny_pipelines):
    for name in ("frame_only", "with_adapter"):
        assert load_pipeline(tiny_pipelines[name]).frame_model.noise_scheduler.config.prediction_type == "epsilon"


def test_non_finite_weights_blame_the_weights_and_name_the_scheduler_config(tiny_pipelines, tmp_path, run_cli):
    folder = copy_of(tiny_pipelines, "frame_only", tmp_path / "model")
    weights = folder / "frame_model" / "unet" / WEIGHTS
    state = load_file(weights)
    name = next(k for k in state if k.endswith("conv_out.weight"))
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, weights)
    code, out, err = render(run_cli, folder, tmp_path)
    line = error_after_bars(err)
    assert code == 2 and "non-finite" in line and "weights" in line and "scheduler_config.json" in line
    assert not (tmp_path / "out.mp4").exists()


def test_a_finite_prediction_stepped_to_nan_blames_the_noise_schedule(tiny_pipelines, tmp_path, run_cli, monkeypatch):
    """The sampler, not the model, makes the sample non-finite: the message says so."""
    from diffusers import DPMSolverMultistepScheduler
    from diffusers.schedulers.scheduling_utils import SchedulerOutput

    def nan_step(self, model_output, timestep, sample, *args, **kwargs):
        return SchedulerOutput(prev_sample=torch.full_like(sample, float("nan")))

    monkeypatch.setattr(DPMSolverMultistepScheduler, "step", nan_step)
    code, out, err = render(run_cli, tiny_pipelines["frame_only"], tmp_path, "--scheduler", "dpm")
    line = error_after_bars(err)
    assert code == 2 and "noise schedule" in line and "prediction was finite" in line and "weights" not in line
    assert not (tmp_path / "out.mp4").exists()


# ------------------------------------------------------------ item 4: temporal adapter weights

def damaged_adapter(tiny_pipelines, tmp_path, damage):
    folder = copy_of(tiny_pipelines, "with_adapter", tmp_path / "model")
    weights = folder / "temporal_adapter" / WEIGHTS
    damage(folder, weights)
    return folder


def fusion_weights(folder, weights):
    shutil.copyfile(folder / "frame_model" / "fusion" / WEIGHTS, weights)


def one_missing(folder, weights):
    state = load_file(weights)
    state.pop(sorted(state)[0])
    save_file(state, weights)


def one_extra(folder, weights):
    state = load_file(weights)
    state["motion_modules.99.extra.weight"] = torch.zeros(2)
    save_file(state, weights)


def one_reshaped(folder, weights):
    state = load_file(weights)
    key = next(k for k in sorted(state) if state[k].dim() == 2)
    state[key] = torch.zeros(state[key].shape[0] + 1, state[key].shape[1])
    save_file(state, weights)


def not_safetensors(folder, weights):
    weights.write_bytes(b"\x80\x04 a pickle, or anything else")


ADAPTER_DAMAGE = [(fusion_weights, "unexpected|missing"), (one_missing, "missing"), (one_extra, "unexpected"),
                  (one_reshaped, "shape"), (not_safetensors, "safetensors")]


@pytest.mark.parametrize("damage, message", ADAPTER_DAMAGE, ids=[d.__name__ for d, _ in ADAPTER_DAMAGE])
def test_adapter_weights_that_do_not_fit_are_refused_when_loaded(damage, message, tiny_pipelines, tmp_path):
    folder = damaged_adapter(tiny_pipelines, tmp_path, damage)
    with pytest.raises(SigngenError, match=message):
        load_adapter(folder / "temporal_adapter")


def test_render_with_another_modules_weights_as_adapter_is_one_line(tiny_pipelines, tmp_path, run_cli, cli_error_line):
    folder = damaged_adapter(tiny_pipelines, tmp_path, fusion_weights)
    code, out, err = render(run_cli, folder, tmp_path)
    line = cli_error_line(err)
    assert code == 2 and "temporal_adapter" in line and "meta" not in line
    assert not (tmp_path / "out.mp4").exists()


def test_the_tiny_adapter_loads_with_its_trained_weights(tiny_pipelines):
    adapter = load_adapter(tiny_pipelines["with_adapter"] / "temporal_adapter")
    saved = load_file(tiny_pipelines["with_adapter"] / "temporal_adapter" / WEIGHTS)
    assert all(torch.equal(tensor, saved[key]) for key, tensor in adapter.state_dict().items())


# ------------------------------------------------------------ item 5: pipeline settings at assemble time

BAD_SETTINGS = [
    ("guidance_interval=5", "guidance_interval"),
    ("guidance_interval=-0.1", "guidance_interval"),
    ("guidance_interval=.nan", "guidance_interval"),
    ("num_steps=100000", "num_steps"),
    ("num_steps=1001", "num_steps"),
    ("appearance_scale=.nan", "appearance_scale"),
    ("full_scale=1e30", "full_scale"),
    ("full_scale=-.inf", "full_scale"),
    ("scheduler=bogus", "scheduler"),
    ("scheduler=SchedulerMixin", "scheduler"),
]


@pytest.mark.parametrize("setting, name", BAD_SETTINGS, ids=[s for s, _ in BAD_SETTINGS])
def test_assemble_refuses_settings_every_render_would_refuse(setting, name, tiny_pipelines, tmp_path,
                                                            run_cli, cli_error_line):
    out = tmp_path / "pipeline"
    code, stdout, err = run_cli("pipeline", "assemble", tiny_pipelines["frame_model"], "-o", out, "--set", setting)
    assert code == 2 and name in cli_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_num_steps_beyond_the_models_training_timesteps_is_refused(tiny_pipelines, tmp_path, run_cli, cli_error_line):
    frame = tmp_path / "frame_model"
    shutil.copytree(tiny_pipelines["frame_model"], frame)
    edit_json(frame / "scheduler" / "scheduler_config.json", num_train_timesteps=50)
    out = tmp_path / "pipeline"
    code, stdout, err = run_cli("pipeline", "assemble", frame, "-o", out, "--set", "num_steps=60")
    assert code == 2 and "50 training timesteps" in cli_error_line(err) and not out.exists()
    # Within the model's schedule it assembles.
    code, stdout, err = run_cli("pipeline", "assemble", frame, "-o", out, "--set", "num_steps=50")
    assert code == 0 and load_pipeline(out).settings.num_steps == 50


def test_a_pipeline_json_edited_after_assembly_is_refused_when_loaded(tiny_pipelines, tmp_path, run_cli, cli_error_line):
    folder = copy_of(tiny_pipelines, "frame_only", tmp_path / "model")
    edit_json(folder / "pipeline.json", guidance_interval=5)
    code, out, err = render(run_cli, folder, tmp_path)
    assert code == 2 and "pipeline.json" in cli_error_line(err) and "guidance_interval" in cli_error_line(err)


def test_the_defaults_and_the_tiny_settings_are_valid(tiny_pipeline_settings):
    RenderSettings()
    RenderSettings(**tiny_pipeline_settings)
    with pytest.raises(SigngenError, match="render setting num_steps must be a whole number"):
        RenderSettings(num_steps=2.5)


# ------------------------------------------------------------ item 14: the error after progress bars

def test_an_error_after_an_open_progress_bar_starts_its_own_line():
    """A bar left open (not closed by a ``with`` block) is closed, and the line it left
    unfinished ended, before the error is printed."""
    from tqdm import tqdm

    from signgen.cli.main import LineTrackingStream, print_error

    stream = LineTrackingStream(io.StringIO())
    bar = tqdm(total=10, desc="denoising", file=stream)
    bar.update(3)
    print_error("the model's output became non-finite", stream)
    text = stream.getvalue()
    assert bar.disable  # closed (a closed tqdm bar is disabled)
    assert text.split("\n")[-2] == "signgen: error: the model's output became non-finite"
    assert text.endswith("\n") and text.count("signgen:") == 1

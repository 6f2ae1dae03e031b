"""Hostile renders (issue 17, classes 5, 6, 8 and 9) on tiny random-weight pipelines: a
model whose weights hold NaN, non-finite or huge guidance, too many steps and a huge seed
are one error line and no video; the same seed writes byte-identical mp4 files; a train
error leaves no --out folder behind."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from signgen.cli.main import main
from signgen.errors import SigngenError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def folders(tiny_pipelines):
    return tiny_pipelines


@pytest.fixture(scope="module")
def nan_pipeline(folders, tmp_path_factory):
    folder = tmp_path_factory.mktemp("nan") / "pipeline"
    shutil.copytree(folders["frame_only"], folder)
    weights = folder / "frame_model" / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    name = next(k for k in state if k.endswith("conv_out.weight"))
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, weights)
    return folder


def one_line_error(capsys, args, folder) -> str:
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("signgen:")]
    assert len(lines) == 1 and lines[0].startswith("signgen: error: ") and "Traceback" not in err, err
    assert list(folder.iterdir()) == []
    return lines[0]


def test_a_model_whose_weights_hold_nan_is_an_error_not_a_black_video(nan_pipeline, tmp_path, capsys):
    line = one_line_error(capsys, ["render", "--gloss", "A", "--model", nan_pipeline, "--steps", 1, "-o", tmp_path / "out.mp4"], tmp_path)
    assert "non-finite" in line


def test_guidance_steps_and_seed_are_checked_by_the_pipeline_too(folders):
    from signgen.pipelines.pipeline import load_pipeline

    from diffusers import DDPMScheduler

    from signgen.pipelines.settings import MAX_STEPS

    pipeline = load_pipeline(folders["frame_only"])
    # A model trained on fewer timesteps than MAX_STEPS: its own cap is checked beside the settings' range.
    pipeline.frame_model.noise_scheduler = DDPMScheduler.from_config(pipeline.frame_model.noise_scheduler.config, num_train_timesteps=50)
    for kwargs, message in [({"appearance_scale": float("nan")}, "render setting appearance_scale must be a finite number"),
                            ({"full_scale": 1e30}, "render setting full_scale .* must be from -30 to 30"),
                            ({"num_steps": 51}, "the model's 50 training timesteps"),
                            ({"num_steps": MAX_STEPS + 1}, f"render setting num_steps .* must be from 1 to {MAX_STEPS}"),
                            ({"num_steps": 0}, "render setting num_steps .* must be from 1 to"),
                            ({"seed": 10**23}, "seed must be a whole number from 0 to 2\\*\\*63-1"), ({"seed": -1}, "seed must be"),
                            ({"seed": 1.5}, "seed must be"), ({"seed": True}, "seed must be"),
                            ({"scheduler": "FlowMatchEulerDiscreteScheduler"}, "unknown scheduler")]:
        with pytest.raises(SigngenError, match=message) as error:
            pipeline(glosses="A", progress=False, **kwargs)
        assert "\n" not in str(error.value)


def test_steps_beyond_the_training_timesteps_on_the_command_line(folders, tmp_path, capsys):
    model = tmp_path / "fifty"
    shutil.copytree(folders["frame_only"], model)
    config_path = model / "frame_model" / "scheduler" / "scheduler_config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "num_train_timesteps": 50}))
    work = tmp_path / "work"
    work.mkdir()
    line = one_line_error(capsys, ["render", "--gloss", "A", "--model", model, "--steps", 51, "-o", work / "out.mp4"], work)
    assert "from 1 to the model's 50 training timesteps" in line


def test_two_renders_with_one_seed_write_byte_identical_mp4_files(folders, tmp_path, capsys):
    outputs = [tmp_path / "first.mp4", tmp_path / "second.mp4"]
    for out in outputs:
        assert main(["render", "--gloss", "A", "--model", str(folders["with_adapter"]), "--seed", "7", "-o", str(out)]) == 0
    assert outputs[0].read_bytes() == outputs[1].read_bytes()


def test_render_names_the_fingerspelled_glosses(folders, tmp_path, capsys):
    assert main(["render", "--gloss", "AB", "--model", str(folders["frame_only"]), "--steps", "1", "--guidance", "1,1",
                 "-o", str(tmp_path / "ab.mp4")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("signgen:")]
    assert lines == ["signgen: fingerspelled 1 gloss not in the lexicon: AB"]


def test_a_model_config_with_zeros_is_one_line(folders, tmp_path, capsys):
    model = tmp_path / "zeros"
    shutil.copytree(folders["frame_only"], model)
    config_path = model / "frame_model" / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config["sample_size"] = [0, 0]
    config["norm_num_groups"] = 0
    config_path.write_text(json.dumps(config))
    work = tmp_path / "work"
    work.mkdir()
    line = one_line_error(capsys, ["render", "--gloss", "A", "--model", model, "-o", work / "out.mp4"], work)
    assert "must be a positive number" in line


def test_a_train_error_leaves_no_out_folder(tmp_path):
    """A run that fails before its first checkpoint removes the --out it created (here:
    more accumulation steps than the loader gives)."""
    import numpy as np

    from signgen.config import load_g2p_config
    from signgen.poses import skeleton
    from signgen.training.g2p import Example, train_g2p

    rng = np.random.default_rng(0)
    examples = []
    for glosses in (["A", "B"], ["B", "C"], ["C", "A", "B"], ["A"]):
        xy = rng.normal(scale=0.3, size=(3 * len(glosses) + 2, skeleton.NUM_POINTS, 2)).astype(np.float32)
        examples.append(Example(glosses, xy, np.ones(xy.shape[:2], dtype=bool)))
    config = load_g2p_config(None, ["model.hidden_size=16", "model.num_heads=2", "model.ff_size=16", "model.encoder_layers=1",
                                    "model.decoder_layers=1", "model.aligner_size=8", "train.batch_size=2",
                                    "train.gradient_accumulation_steps=4", "train.num_workers=0"])
    out = tmp_path / "run"
    with pytest.raises(SigngenError, match="gradient_accumulation_steps 4 exceeds"):
        train_g2p(examples, out, config, progress=False)
    assert not out.exists()


def test_resuming_from_a_checkpoint_that_is_not_safetensors_is_one_line(tmp_path):
    from signgen.training.checkpoints import OPTIMIZER_NAME, STATE_NAME, load_checkpoint

    checkpoint = tmp_path / "step-0000002"
    checkpoint.mkdir()
    (checkpoint / STATE_NAME).write_text(json.dumps({"step": 2, "optimizer": {"plain_state": {}, "param_groups": []}}))
    (checkpoint / OPTIMIZER_NAME).write_bytes(b"\x80\x04\x95 a pickle, not safetensors")
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(SigngenError, match="not readable safetensors|damaged"):
        load_checkpoint(checkpoint, lambda folder: None, optimizer, None, None)

"""The hand model (issue #25, the hand stage): it starts as the identity on its base, saves and
loads as one strict folder of its own kind, and the GPU config is sized without weights."""

from __future__ import annotations

import json

import pytest
import torch

from signgen.config import CONFIG_FOLDER, load_config
from signgen.errors import SigngenError
from signgen.models.hands import HandModel, build_hand_model, load_hand_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(crop_size=16, patch_size=1, block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=8)


def inputs(count: int = 3, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    noisy = torch.randn(count, 3, size, size, generator=generator)
    keypoints = torch.rand(count, 6, size, size, generator=generator)
    appearance = torch.rand(count, 3, size, size, generator=generator) * 2 - 1
    base = torch.rand(count, 3, size, size, generator=generator) * 2 - 1
    return noisy, keypoints, appearance, base


def randomized(seed: int = 1) -> HandModel:
    torch.manual_seed(seed)
    model = HandModel(**TINY)
    with torch.no_grad():
        for parameter in model.unet.conv_out.parameters():
            parameter.normal_(0, 0.1)
    return model.eval()


def test_an_untrained_model_returns_its_base_exactly():
    noisy, keypoints, appearance, base = inputs()
    model = HandModel(**TINY).eval()
    with torch.no_grad():
        clean = model(noisy, torch.tensor([999, 500, 0]), keypoints, appearance, base)
        moved = randomized()(noisy, torch.tensor([999, 500, 0]), keypoints, appearance, base)
    assert torch.equal(clean, base)
    assert not torch.allclose(moved, base)  # the check above could fail: a trained residual moves it


def test_patches_fold_and_unfold_to_the_crop():
    model = HandModel(**{**TINY, "patch_size": 2})
    assert model.unet.config.in_channels == 15 * 4 and model.unet.config.sample_size == 8
    noisy, keypoints, appearance, base = inputs()
    with torch.no_grad():
        assert model(noisy, torch.tensor([1, 2, 3]), keypoints, appearance, base).shape == (3, 3, 16, 16)


def test_inputs_of_the_wrong_shape_are_one_line():
    noisy, keypoints, appearance, base = inputs()
    with pytest.raises(SigngenError, match=r"keypoint map must have shape \(3, 6, 16, 16\)") as error:
        HandModel(**TINY)(noisy, torch.tensor([1, 2, 3]), keypoints[:, :4], appearance, base)
    assert "\n" not in str(error.value)


def test_save_then_load_gives_identical_output(tmp_path):
    model = randomized()
    model.save_pretrained(tmp_path / "hands")
    loaded = load_hand_model(tmp_path / "hands")
    noisy, keypoints, appearance, base = inputs()
    timesteps = torch.tensor([999, 400, 3])
    with torch.no_grad():
        assert torch.equal(model(noisy, timesteps, keypoints, appearance, base), loaded(noisy, timesteps, keypoints, appearance, base))
    assert loaded.noise_scheduler.config == model.noise_scheduler.config
    def fields(module) -> dict:
        return {k: v for k, v in json.loads(module.to_json_string()).items() if not k.startswith("_")}

    assert fields(loaded) == fields(model)
    # A training run's output folder loads too (its model/).
    (tmp_path / "run").mkdir()
    model.save_pretrained(tmp_path / "run" / "model")
    assert torch.equal(load_hand_model(tmp_path / "run").unet.conv_out.weight, model.unet.conv_out.weight)


def one_line_error(folder) -> str:
    with pytest.raises(SigngenError) as error:
        load_hand_model(folder)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_folder_of_another_kind_is_one_line(tmp_path, tiny_frame_model):
    tiny_frame_model().save_pretrained(tmp_path / "frame")
    assert "'signgen-frame-model' folder, not a signgen hand model folder" in one_line_error(tmp_path / "frame")
    assert "no model_index.json" in one_line_error(tmp_path)
    with pytest.raises(SigngenError, match="refusing to overwrite"):
        HandModel(**TINY).save_pretrained(tmp_path / "frame")


def test_a_damaged_or_swapped_folder_is_one_line(tmp_path):
    HandModel(**TINY).save_pretrained(tmp_path / "a")
    HandModel(**{**TINY, "block_out_channels": (8, 8)}).save_pretrained(tmp_path / "b")
    (tmp_path / "a" / "diffusion_pytorch_model.safetensors").write_bytes((tmp_path / "b" / "diffusion_pytorch_model.safetensors").read_bytes())
    assert "does not match" in one_line_error(tmp_path / "a")
    HandModel(**TINY).save_pretrained(tmp_path / "c")
    path = tmp_path / "c" / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "prediction_type": "epsilon"}))
    assert "predicts the clean crop" in one_line_error(tmp_path / "c")


def test_the_gpu_config_is_sized_without_allocating_weights():
    config = load_config("hands", CONFIG_FOLDER / "hands-phoenix.yaml")
    with torch.device("meta"):
        model = build_hand_model(config.model)
    parameters = list(model.parameters())
    assert all(p.is_meta for p in parameters)
    assert model.crop_size == 128 and 10e6 < sum(p.numel() for p in parameters) < 60e6 and model.detail is not None
    tiny = build_hand_model(load_config("hands").model)  # the default tier builds for real, small
    assert tiny.crop_size == 64 and sum(p.numel() for p in tiny.parameters()) < 2e6


def test_a_crop_the_unet_cannot_halve_is_one_line():
    with pytest.raises(SigngenError, match=r"crop_size 20 must be divisible by patch_size x 2\^\(levels - 1\) = 8"):
        load_config("hands", None, ["model.crop_size=20"])


def test_a_detail_head_starts_as_no_change_and_saves_and_loads(tmp_path):
    noisy, keypoints, appearance, base = inputs()
    timesteps = torch.tensor([999, 500, 0])
    plain = randomized()
    torch.manual_seed(1)
    detailed = HandModel(**TINY, detail_channels=8, detail_layers=1).eval()
    detailed.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        assert torch.equal(detailed(noisy, timesteps, keypoints, appearance, base), plain(noisy, timesteps, keypoints, appearance, base))
        detailed.detail.conv_out.weight.normal_(0, 0.1)
        refined = detailed(noisy, timesteps, keypoints, appearance, base)
    assert not torch.allclose(refined, plain(noisy, timesteps, keypoints, appearance, base))  # the check above could fail
    detailed.save_pretrained(tmp_path / "hands")
    loaded = load_hand_model(tmp_path / "hands")
    assert loaded.detail is not None and plain.detail is None
    with torch.no_grad():
        assert torch.equal(loaded(noisy, timesteps, keypoints, appearance, base), refined)

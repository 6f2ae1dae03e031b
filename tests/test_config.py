"""Frame-model configs: defaults + overrides merged, validated into dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest

from signgen.config import CONFIG_FOLDER, FrameConfig, load_frame_config
from signgen.errors import SigngenError

DEFAULTS = CONFIG_FOLDER / "frame-defaults.yaml"
TINY = CONFIG_FOLDER / "frame-tiny.yaml"
PHOENIX = CONFIG_FOLDER / "frame-phoenix.yaml"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_configs_load_and_override_the_defaults():
    defaults = load_frame_config(DEFAULTS)
    tiny = load_frame_config(TINY)
    phoenix = load_frame_config(PHOENIX)
    assert isinstance(tiny, FrameConfig)
    assert tiny.model.resolution == [64, 52]
    assert phoenix.model.resolution == defaults.model.resolution == [256, 208]
    # A nested section merges key by key: tiny sets the encoder sizes, inherits the rest.
    assert tiny.model.encoder.patch_size == 4
    assert tiny.model.encoder.backbone == defaults.model.encoder.backbone == "vit"
    assert tiny.model.pose_channels == 4
    assert tiny.train_diffusion.uncond_prob == defaults.train_diffusion.uncond_prob
    assert phoenix.train_diffusion.mixed_precision == "bf16" and defaults.train_diffusion.mixed_precision == "no"
    assert isinstance(tiny.train_fusion.learning_rate, float)


def test_command_line_overrides_are_parsed_as_yaml():
    config = load_frame_config(TINY, ["model.unet.layers_per_block=2", "model.resolution=[32, 24]", "sampling.scheduler=ddim"])
    assert config.model.unet.layers_per_block == 2
    assert config.model.resolution == [32, 24]
    assert config.sampling.scheduler == "ddim"


@pytest.mark.parametrize(
    "override, message",
    [
        ("train_fusion.max_steps=many", "train_fusion.max_steps: expected an integer"),
        ("train_fusion.max_stepz=3", "no such key"),
        ("model.nothing.x=3", "not a section"),
        ("max_steps", "KEY=VALUE"),
        ("model.use_fusion_embedding=1", "expected true or false"),
        ("model.resolution=[64, 50]", "divisible by 4"),
        ("model.encoder.backbone=resnet", "'vit' or 'clip'"),
        ("model.encoder.backbone=clip", "clip_path"),
        ("train_diffusion.mixed_precision=fp8", "mixed_precision"),
        ("train_fusion.lr_schedule=exotic", "lr_schedule"),
        ("train_diffusion.uncond_prob=0.95", "sum to at most 1"),
        ("model.unet.norm_num_groups=7", "norm_num_groups"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(SigngenError, match=message) as error:
        load_frame_config(TINY, [override])
    assert "\n" not in str(error.value)


def test_unknown_and_missing_keys_in_a_file_are_named(tmp_path):
    typo = write(tmp_path, "typo.yaml", f"base: {DEFAULTS}\nmodel:\n  unet:\n    layers_per_blok: 2\n")
    with pytest.raises(SigngenError, match=r"unknown key\(s\) model\.unet\.layers_per_blok"):
        load_frame_config(typo)
    alone = write(tmp_path, "alone.yaml", "model:\n  resolution: [64, 52]\n")
    with pytest.raises(SigngenError, match=r"missing key\(s\) .*train_fusion"):
        load_frame_config(alone)


def test_base_is_resolved_relative_to_the_file_and_chains(tmp_path):
    write(tmp_path, "middle.yaml", f"base: {TINY}\nsampling:\n  num_steps: 7\n")
    top = write(tmp_path, "top.yaml", "base: middle.yaml\nsampling:\n  scheduler: euler\n")
    config = load_frame_config(top)
    assert (config.sampling.num_steps, config.sampling.scheduler, config.model.resolution) == (7, "euler", [64, 52])


def test_unreadable_files_are_user_errors(tmp_path):
    with pytest.raises(SigngenError, match="not found"):
        load_frame_config(tmp_path / "nope.yaml")
    with pytest.raises(SigngenError, match="not valid YAML"):
        load_frame_config(write(tmp_path, "bad.yaml", "model: [unclosed\n"))
    with pytest.raises(SigngenError, match="mapping"):
        load_frame_config(write(tmp_path, "list.yaml", "- 1\n- 2\n"))
    loop = write(tmp_path, "loop.yaml", "base: loop.yaml\n")
    with pytest.raises(SigngenError, match="own base"):
        load_frame_config(loop)

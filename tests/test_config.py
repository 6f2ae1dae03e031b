"""Configs of every family (frame, temporal, g2p): one loader, defaults + overrides merged,
validated into dataclasses, shipped in the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from signgen.config import (
    CONFIG_FOLDER,
    FAMILIES,
    FrameConfig,
    G2PConfig,
    TemporalConfig,
    load_config,
    load_frame_config,
    save_config,
)
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
    phoenix = load_frame_config(PHOENIX, ["model.latent.vae_path=/any/vae"])  # a VAE is required; not read here
    assert isinstance(tiny, FrameConfig)
    assert tiny.model.resolution == [64, 52]
    assert defaults.model.resolution == [256, 208] and phoenix.model.resolution == [512, 416]
    # A nested section merges key by key: tiny sets the encoder sizes, inherits the rest.
    assert tiny.model.encoder.patch_size == 4
    assert tiny.model.encoder.backbone == defaults.model.encoder.backbone == "vit"
    assert tiny.model.pose_channels == 4
    assert tiny.train_diffusion.uncond_prob == defaults.train_diffusion.uncond_prob
    assert phoenix.train_diffusion.mixed_precision == "bf16" and defaults.train_diffusion.mixed_precision == "no"
    assert isinstance(tiny.train_fusion.learning_rate, float)


def test_command_line_overrides_are_parsed_as_yaml():
    config = load_frame_config(TINY, ["model.unet.layers_per_block=2", "model.resolution=[32, 24]", "model.noise.beta_schedule=linear"])
    assert config.model.unet.layers_per_block == 2
    assert config.model.resolution == [32, 24]
    assert config.model.noise.beta_schedule == "linear"
    # YAML 1.1 reads an exponent without a dot as text; a float field takes it as the number it is.
    config = load_frame_config(TINY, ["train_diffusion.learning_rate=3e-5", "train_diffusion.hand_loss_weight=2E0"])
    assert config.train_diffusion.learning_rate == 3e-5 and config.train_diffusion.hand_loss_weight == 2.0


@pytest.mark.parametrize(
    "override, message",
    [
        ("train_fusion.max_steps=many", "train_fusion.max_steps: expected an integer"),
        ("train_diffusion.learning_rate=1e-5x", "train_diffusion.learning_rate: expected a number"),
        ("train_fusion.max_steps=1e3", "train_fusion.max_steps: expected an integer"),
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
    write(tmp_path, "middle.yaml", f"base: {TINY}\ntrain_fusion:\n  max_steps: 7\n")
    top = write(tmp_path, "top.yaml", "base: middle.yaml\ntrain_fusion:\n  lr_schedule: linear\n")
    config = load_frame_config(top)
    assert (config.train_fusion.max_steps, config.train_fusion.lr_schedule, config.model.resolution) == (7, "linear", [64, 52])


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


# ------------------------------------------------------------------ every family


@pytest.mark.parametrize("family, cls, default", [("frame", FrameConfig, "frame-tiny.yaml"), ("temporal", TemporalConfig, "temporal-tiny.yaml"),
                                                  ("g2p", G2PConfig, "g2p-tiny.yaml")])
def test_each_family_has_one_shipped_default_tier(family, cls, default):
    assert FAMILIES[family][1] == CONFIG_FOLDER / default
    assert isinstance(load_config(family), cls)  # no path: the shipped default


def test_every_shipped_config_loads_from_the_package_folder():
    for path in sorted(CONFIG_FOLDER.glob("*.yaml")):
        family = path.name.split("-")[0]
        required = {"frame-phoenix.yaml": ["model.latent.vae_path=/a/vae"],
                    "frame-phoenix-sd15.yaml": ["model.init_from=/a/sd15"],
                    "temporal-phoenix-sd15.yaml": ["model.init_from=/an/animatediff"]}.get(path.name, [])  # not read here
        assert isinstance(load_config(family, path, required), FAMILIES[family][0]), path.name


@pytest.mark.parametrize("family, override, message", [
    ("temporal", "train.num_frames=1", "at least 2 frames"),
    ("temporal", "windows.overlap=40", "windows.overlap"),
    ("temporal", "adapter.levelz=[1]", "no such key"),
    ("g2p", "loss.bin_weight=-1", "non-negative"),
    ("g2p", "train.batch_size=0", "batch_size"),
])
def test_temporal_and_g2p_overrides_are_validated_in_one_line(family, override, message):
    with pytest.raises(SigngenError, match=message) as error:
        load_config(family, None, [override])
    assert "\n" not in str(error.value)


def test_any_file_works_as_config_and_a_saved_config_reads_back(tmp_path):
    mine = write(tmp_path, "mine.yaml", f"base: {CONFIG_FOLDER / 'g2p-tiny.yaml'}\ntrain:\n  max_steps: 7\n")
    config = load_config("g2p", mine, ["train.seed=3"])
    assert (config.train.max_steps, config.train.seed) == (7, 3)
    save_config(config, tmp_path / "config.yaml")
    assert load_config("g2p", tmp_path / "config.yaml") == config
    with pytest.raises(SigngenError, match="unknown config family"):
        load_config("latent")


@pytest.mark.parametrize("command, default", [("fusion", "frame-tiny.yaml"), ("diffusion", "frame-tiny.yaml"),
                                              ("temporal", "temporal-tiny.yaml"), ("g2p", "g2p-tiny.yaml")])
def test_every_train_command_takes_config_set_and_resume_and_names_its_default(command, default, capsys):
    from signgen.cli.main import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--config FILE" in text and "--set KEY=VALUE" in text and "--resume [CHECKPOINT]" in text
    assert default in text
    args = build_parser().parse_args(["train", command, "--data", "d", "--out", "o", "--set", "a=1", "--set", "b=2", "--resume"]
                                     + (["--frame-model", "m"] if command == "temporal" else []))
    assert args.overrides == ["a=1", "b=2"] and args.resume is True

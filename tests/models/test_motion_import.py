"""The temporal adapter from AnimateDiff's motion modules: a tiny diffusers MotionAdapter saved by the test."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from diffusers import MotionAdapter

from signgen.config import CONFIG_FOLDER, load_temporal_config
from signgen.errors import SigngenError
from signgen.training.temporal import start_adapter, with_motion_adapter


def save_motion_adapter(folder, widths=(16, 32), seed=2):
    """A MotionAdapter for the tiny 16 x 16 frame UNet (two levels, one layer a block), its
    weights moved off zero so that every module computes something."""
    torch.manual_seed(seed)
    source = MotionAdapter(block_out_channels=widths, motion_layers_per_block=1, motion_num_attention_heads=2,
                           motion_norm_num_groups=8, motion_max_seq_length=16, use_motion_mid_block=True)
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    source.save_pretrained(folder)
    return source.eval()


def config_from(folder):
    return with_motion_adapter(load_temporal_config(CONFIG_FOLDER / "temporal-tiny.yaml", [f"model.init_from={folder}"]))


def test_a_loaded_motion_adapter_reproduces_its_modules(tmp_path, tiny_frame_model):
    source = save_motion_adapter(tmp_path / "animatediff")
    config, notes = config_from(tmp_path / "animatediff")
    assert config.adapter.num_attention_heads == 2 and config.adapter.max_frames == 16
    assert any(note.startswith("adapter.num_attention_heads 4 -> 2") for note in notes)
    lines = []
    adapter = start_adapter(tiny_frame_model(), config, echo=lines.append).eval()
    assert lines == [f"motion modules: 7 of 7 loaded from {tmp_path / 'animatediff'}"]
    generator = torch.Generator().manual_seed(0)
    for site, module in zip(adapter.config.sites, adapter.motion_modules):
        theirs = source.get_submodule(site.replace("attentions", "motion_modules").replace("resnets", "motion_modules")
                                      if not site.startswith("mid") else "mid_block.motion_modules.0")
        for key, tensor in theirs.state_dict().items():
            assert torch.equal(module.state_dict()[key], tensor), (site, key)
        hidden = torch.randn(2 * 6, module.norm.num_channels, 4, 3, generator=generator)  # two 6-frame videos
        with torch.no_grad():
            assert torch.allclose(module(hidden, 6), theirs(hidden, num_frames=6), atol=1e-5), site


def test_modules_of_other_widths_are_named_one_line_each(tmp_path, tiny_frame_model):
    save_motion_adapter(tmp_path / "wider", widths=(16, 64))
    config, _ = config_from(tmp_path / "wider")
    lines = []
    adapter = start_adapter(tiny_frame_model(), config, echo=lines.append)
    assert lines[0].startswith("motion modules: 3 of 7 loaded")  # level 0 down and up fit, level 1 and the middle do not
    assert len(lines) == 5 and all("(32 channels) left at its start: the MotionAdapter's" in line and "has 64 channels" in line
                                   for line in lines[1:])
    assert not any(p.abs().sum() for p in adapter.motion_modules[1].proj_out.parameters())  # still the identity


def test_a_folder_of_another_kind_or_no_fitting_width_is_one_line(tmp_path, tiny_frame_model):
    save_motion_adapter(tmp_path / "none-fit", widths=(64, 128))
    config, _ = config_from(tmp_path / "none-fit")
    with pytest.raises(SigngenError, match=r"no motion module of .* fits this frame model's UNet \(motion module at down_blocks.0"):
        start_adapter(tiny_frame_model(), config)
    tiny_frame_model().unet.save_pretrained(tmp_path / "unet")
    with pytest.raises(SigngenError, match="holds a UNet2DConditionModel, not a MotionAdapter"):
        config_from(tmp_path / "unet")
    with pytest.raises(SigngenError, match="folder not found"):
        config_from(tmp_path / "missing")


def test_train_temporal_starts_from_the_motion_adapter(tmp_path, monkeypatch, tiny_frame_model, capsys):
    from signgen.models.temporal import load_adapter
    from signgen.training.temporal import train_temporal

    source = save_motion_adapter(tmp_path / "animatediff")
    model = tiny_frame_model()
    model.save_pretrained(tmp_path / "frame-model")
    height, width = model.resolution

    def clip_dataset(corpus, split, num_frames=16, resolution=(64, 52), **_):
        generator = torch.Generator().manual_seed(0)
        return [{"source": torch.rand(3, height, width, generator=generator) * 2 - 1,
                 "frames": torch.rand(num_frames, 3, height, width, generator=generator) * 2 - 1,
                 "poses": torch.rand(num_frames, model.pose_channels, height, width, generator=generator)} for _ in range(2)]

    monkeypatch.setitem(sys.modules, "signgen.corpora.samplers", types.SimpleNamespace(clip_dataset=clip_dataset))
    config = load_temporal_config(CONFIG_FOLDER / "temporal-tiny.yaml", [
        f"model.init_from={tmp_path / 'animatediff'}", "train.max_steps=1", "train.batch_size=2", "train.num_frames=3",
        "windows.overlap=1", "train.ema_decay=0", "train.learning_rate=1.0e-9", "train.gradient_checkpointing=true"])
    train_temporal(tmp_path / "frame-model", "unused", tmp_path / "run", config, progress=False)
    assert "motion modules: 7 of 7 loaded" in capsys.readouterr().out
    trained = load_adapter(tmp_path / "run")
    assert trained.config.num_attention_heads == 2
    drift = max((trained.motion_modules[0].state_dict()[k] - v).abs().max() for k, v in source.down_blocks[0].motion_modules[0].state_dict().items())
    assert drift < 1e-6  # one step at a negligible learning rate: still AnimateDiff's weights

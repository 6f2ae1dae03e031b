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


def tiny_sd_unet(seed=0):
    """A plain two-level UNet2DConditionModel (what UNetMotionModel takes), weights moved off
    their initialisation."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1,
                                cross_attention_dim=16, norm_num_groups=8, attention_head_dim=4)
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.02)
    return unet.eval()


def test_the_imported_adapter_computes_what_diffusers_unet_motion_model_computes(tmp_path):
    """End to end, against diffusers' own AnimateDiff model: the UNet with the imported
    adapter attached (signgen's VideoUNet) and UNetMotionModel.from_unet2d(unet, adapter),
    every motion module (the middle one included) moved off its zero start."""
    from diffusers import UNetMotionModel

    from signgen.models.temporal import VideoUNet

    source = save_motion_adapter(tmp_path / "animatediff")
    assert source.mid_block.motion_modules[0].proj_out.weight.abs().min() > 0
    unet = tiny_sd_unet()
    config, _ = config_from(tmp_path / "animatediff")
    lines = []
    adapter = start_adapter(types.SimpleNamespace(unet=unet), config, echo=lines.append).eval()
    assert lines == [f"motion modules: 7 of 7 loaded from {tmp_path / 'animatediff'}"]
    assert adapter.config.sites[-1] == "mid_block.attentions.0"
    reference = UNetMotionModel.from_unet2d(unet, source).eval()

    generator = torch.Generator().manual_seed(3)
    videos, frames = 2, 5
    sample = torch.randn(videos, 4, frames, 8, 8, generator=generator)
    tokens = torch.randn(videos * frames, 3, 16, generator=generator)  # per frame, as AnimateDiffPipeline passes them
    frame_batch = sample.transpose(1, 2).flatten(0, 1)  # (B * F, C, H, W), frames of a video contiguous
    with torch.no_grad():
        expected = reference(sample, 400, tokens).sample  # (B, C, F, H, W)
        video = VideoUNet(unet, adapter)
        got = video(frame_batch, 400, tokens, num_frames=frames).sample
    got = got.unflatten(0, (videos, frames)).transpose(1, 2)
    assert (got - expected).abs().max() < 1e-5
    video.detach()
    with torch.no_grad():  # the comparison sees the motion modules: without them the outputs differ
        plain = unet(frame_batch, 400, tokens).sample
    assert (plain.unflatten(0, (videos, frames)).transpose(1, 2) - expected).abs().max() > 1e-3


def test_an_adapter_with_the_middle_module_after_the_resnet_is_not_animatediffs():
    from signgen.models.motion_import import source_name

    assert source_name("mid_block.attentions.0") == "mid_block.motion_modules.0"
    assert source_name("up_blocks.1.attentions.2") == "up_blocks.1.motion_modules.2"
    with pytest.raises(SigngenError, match="after a middle-block resnet"):
        source_name("mid_block.resnets.1")


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


def test_missing_weights_name_init_from_and_the_fp16_variant_loads(tmp_path):
    from signgen.models.motion_import import load_motion_adapter

    source = save_motion_adapter(tmp_path / "animatediff")
    weights = tmp_path / "animatediff" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_name("diffusion_pytorch_model.fp16.safetensors"))
    loaded = load_motion_adapter(tmp_path / "animatediff")
    assert all(torch.equal(loaded.state_dict()[key], tensor) for key, tensor in source.state_dict().items())
    weights.with_name("diffusion_pytorch_model.fp16.safetensors").unlink()
    with pytest.raises(SigngenError, match=r"^model.init_from: the MotionAdapter folder .* has no diffusion_pytorch_model.safetensors or "
                                           r"diffusion_pytorch_model.fp16.safetensors$"):
        load_motion_adapter(tmp_path / "animatediff")
    (tmp_path / "animatediff" / "diffusion_pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(SigngenError, match="pickled weights only"):
        load_motion_adapter(tmp_path / "animatediff")

import pytest
import torch

from signgen.models.denoiser import FrameConditions
from signgen.errors import SigngenError
from signgen.config import load_temporal_config
from signgen.models.temporal import VideoUNet, load_adapter
from signgen.training.temporal import temporal_loss

CLIPS, FRAMES = 2, 4


@pytest.fixture(scope="module")
def frame_model(tiny_frame_model):
    return tiny_frame_model()


def video_inputs(model, seed=0):
    """(CLIPS * FRAMES) noisy samples with per-frame conditions, frames of a clip contiguous."""
    generator = torch.Generator().manual_seed(seed)
    frames = CLIPS * FRAMES
    height, width = model.resolution
    sample = torch.randn(frames, 3, height, width, generator=generator)
    timesteps = torch.full((frames,), 500)
    with torch.no_grad():
        appearance = model.encode_appearance(torch.rand(1, 3, height, width, generator=generator) * 2 - 1)
        conditions = model.frame_conditions(appearance, torch.rand(frames, model.pose_channels, height, width, generator=generator))
    return sample, timesteps, conditions


@torch.no_grad()
def test_untrained_adapter_leaves_the_frame_model_exactly_unchanged(frame_model, tiny_adapter, randomize):
    sample, timesteps, conditions = video_inputs(frame_model)
    frame_wise = frame_model.predict(sample, timesteps, conditions)

    adapter = tiny_adapter(frame_model)
    assert len(adapter.motion_modules) == len(adapter.config.sites) >= 5
    video_unet = VideoUNet(frame_model.unet, adapter)
    try:
        with video_unet.frames(FRAMES):
            with_adapter = frame_model.predict(sample, timesteps, conditions)
        torch.testing.assert_close(with_adapter, frame_wise, rtol=0, atol=1e-6)

        # Not vacuous: a trained adapter changes the output and mixes frames within a clip only.
        randomize(adapter)
        with video_unet.frames(FRAMES):
            trained = frame_model.predict(sample, timesteps, conditions)
            moved = sample.clone()
            moved[0] += 1.0
            trained_moved = frame_model.predict(moved, timesteps, conditions)
        assert (trained - frame_wise).abs().max() > 1e-3
        assert (trained_moved[1:FRAMES] - trained[1:FRAMES]).abs().max() > 1e-4
        torch.testing.assert_close(trained_moved[FRAMES:], trained[FRAMES:], rtol=0, atol=1e-6)
    finally:
        video_unet.detach()
    torch.testing.assert_close(frame_model.predict(sample, timesteps, conditions), frame_wise, rtol=0, atol=0)


@torch.no_grad()
def test_unet_with_adapter_refuses_calls_without_a_frame_count(frame_model, tiny_adapter):
    sample, timesteps, conditions = video_inputs(frame_model)
    video_unet = VideoUNet(frame_model.unet, tiny_adapter(frame_model))
    try:
        with pytest.raises(RuntimeError, match="num_frames"):
            frame_model.predict(sample, timesteps, conditions)
    finally:
        video_unet.detach()


@torch.no_grad()
def test_adapter_save_and_load_round_trip_gives_identical_outputs(frame_model, tmp_path, tiny_adapter):
    sample, timesteps, conditions = video_inputs(frame_model)
    adapter = tiny_adapter(frame_model, randomized=True, levels=[1], include_mid=False)
    assert all(site.startswith(("down_blocks.1.", "up_blocks.0.")) for site in adapter.config.sites)

    def output(adapter):
        video_unet = VideoUNet(frame_model.unet, adapter)
        try:
            with video_unet.frames(FRAMES):
                return frame_model.predict(sample, timesteps, conditions)
        finally:
            video_unet.detach()

    adapter.save_pretrained(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_adapter(tmp_path / "adapter")
    assert dict(loaded.config)["sites"] == list(adapter.config.sites)
    assert torch.equal(output(loaded), output(adapter))


def test_adapter_for_another_frame_model_is_refused(frame_model, tiny_adapter):
    from diffusers import UNet2DConditionModel

    other = UNet2DConditionModel(
        sample_size=16,
        in_channels=7,
        out_channels=3,
        block_out_channels=(16, 48),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=8,
    )
    adapter = tiny_adapter(frame_model)
    with pytest.raises(SigngenError, match="does not fit"):
        VideoUNet(other, adapter)


def clip_batch(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    height, width = model.resolution
    return {
        "source": torch.rand(CLIPS, 3, height, width, generator=generator) * 2 - 1,
        "frames": torch.rand(CLIPS, FRAMES, 3, height, width, generator=generator) * 2 - 1,
        "poses": torch.rand(CLIPS, FRAMES, model.pose_channels, height, width, generator=generator),
    }


def test_only_adapter_parameters_receive_gradients(frame_model, tiny_adapter, tiny_frame_model):
    config = load_temporal_config("configs/temporal-tiny.yaml")
    model = tiny_frame_model()
    model.requires_grad_(False)
    adapter = tiny_adapter(model).train()
    video_unet = VideoUNet(model.unet, adapter)
    optimizer = torch.optim.Adam(adapter.parameters(), lr=1e-2)
    batch = clip_batch(model)

    def backward(seed):
        optimizer.zero_grad(set_to_none=True)
        temporal_loss(model, video_unet, batch, config.train, generator=torch.Generator().manual_seed(seed)).backward()
        grads = {name: p.grad for name, p in adapter.named_parameters()}
        assert all(p.grad is None for p in model.parameters()), "a frame-model weight received a gradient"
        assert all(g is not None for g in grads.values()), "an adapter weight received no gradient"
        return grads

    try:
        # Step 1: proj_out is zero, so the gradient reaches proj_out and stops there.
        grads = backward(seed=0)
        inner = {name: g for name, g in grads.items() if ".proj_out." not in name}
        for name, grad in grads.items():
            if ".proj_out." in name:
                assert grad.abs().sum() > 0, name
        assert all(g.abs().sum() == 0 for g in inner.values())
        optimizer.step()

        # Step 2: with proj_out moved off zero, every module's inner layers learn too.
        grads = backward(seed=1)
        for index in range(len(adapter.motion_modules)):
            for part in ("proj_in.weight", "transformer_blocks.0.attn1.to_q.weight", "transformer_blocks.0.ff.net.2.weight"):
                assert grads[f"motion_modules.{index}.{part}"].abs().sum() > 0, (index, part)
    finally:
        video_unet.detach()

"""Training speed switches of issue #28: gradient checkpointing and 8-bit AdamW."""

from __future__ import annotations

import pytest
import torch

from signgen.errors import SigngenError


def test_adamw8bit_without_cuda_or_bitsandbytes_is_one_line(tiny_frame_config):
    from signgen.training.driver import make_optimizer

    config = tiny_frame_config("train_diffusion.optimizer=adamw8bit").train_diffusion
    with pytest.raises(SigngenError, match="adamw8bit") as error:
        make_optimizer(config, [torch.nn.Parameter(torch.zeros(2))])
    assert "\n" not in str(error.value)
    with pytest.raises(SigngenError, match="optimizer must be one of adamw, adamw8bit"):
        tiny_frame_config("train_diffusion.optimizer=sgd")


def test_gradient_checkpointing_gives_the_same_gradients(tiny_frame_model, tiny_adapter, randomize):
    from signgen.models.denoiser import FrameConditions, predict
    from signgen.models.temporal import VideoUNet

    model = tiny_frame_model(0, train=True)
    adapter = randomize(tiny_adapter(model))
    video = VideoUNet(model.unet, adapter)
    generator = torch.Generator().manual_seed(0)
    frames, height, width = 4, *model.resolution
    sample = torch.randn(frames, *model.sample_shape, generator=generator)
    conditions = FrameConditions(pose_maps=torch.rand(frames, model.pose_channels, height, width, generator=generator),
                                 appearance_tokens=torch.randn(frames, 5, model.image_encoder.token_dim, generator=generator),
                                 fusion_embedding=torch.randn(frames, model.fusion.config.embed_dim, generator=generator))
    calls = {}  # forward calls per watched module: checkpointed modules run again in the backward pass
    watched = {"motion module": adapter.motion_modules[0], "last motion module": adapter.motion_modules[-1],
               "UNet resnet": model.unet.down_blocks[1].resnets[0], "UNet up resnet": model.unet.up_blocks[0].resnets[0]}
    for name, module in watched.items():
        module.register_forward_pre_hook(lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))

    def gradients(checkpointing: bool, with_adapter: bool) -> list:
        calls.clear()
        adapter.zero_grad()
        model.unet.zero_grad()
        video.checkpointing = checkpointing
        model.unet.disable_gradient_checkpointing()
        if checkpointing:  # stage 3 checkpoints the frozen UNet's blocks as well as the motion modules
            model.unet.enable_gradient_checkpointing()
        if with_adapter:
            with video.frames(frames):
                loss = predict(video, sample, torch.full((frames,), 300), conditions).square().mean()
        else:
            loss = predict(model.unet, sample, torch.full((frames,), 300), conditions).square().mean()
        loss.backward()  # outside the frames block, as the training loop does
        return [p.grad.clone() for p in [*adapter.parameters(), *model.unet.parameters()] if p.grad is not None]

    for with_adapter in (True, False):  # the motion modules (stage 3), then the frame UNet alone (stage 2)
        ran = {name for name in watched if with_adapter or name.startswith("UNet")}
        plain = gradients(False, with_adapter)
        assert calls == dict.fromkeys(ran, 1)
        checkpointed = gradients(True, with_adapter)
        assert calls == dict.fromkeys(ran, 2)  # each recomputed once in the backward pass: checkpointing is on
        assert len(plain) == len(checkpointed) and all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, checkpointed))
        video.detach()


def test_a_resumed_run_may_name_another_init_from(tmp_path, tiny_frame_config):
    from signgen.config import save_config
    from signgen.training.driver import check_resumed_config

    save_config(tiny_frame_config("model.init_from=/first/sd15"), tmp_path / "config.yaml")
    check_resumed_config(tmp_path, tiny_frame_config())  # the checkpoint holds the weights, whatever init_from says now
    with pytest.raises(SigngenError, match="model.unet.layers_per_block"):
        check_resumed_config(tmp_path, tiny_frame_config("model.unet.layers_per_block=2"))

"""Frame model v2: the coarse image as input channels and the reference path."""

from __future__ import annotations

import pytest
import torch

from signgen.models.frame_model import FrameModel

V2 = ["model.coarse_image=true", "model.reference_attention=true",
      "model.unet.down_block_types=[CrossAttnDownBlock2D, CrossAttnDownBlock2D]",
      "model.unet.up_block_types=[CrossAttnUpBlock2D, CrossAttnUpBlock2D]"]


def conditions(model: FrameModel, frames: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    height, width = model.resolution
    source = torch.rand(1, 3, height, width, generator=generator) * 2 - 1
    appearance = model.encode_appearance(source)
    reference = model.reference_features(source, appearance)
    coarse = model.coarse_condition(torch.rand(frames, 3, height, width, generator=generator) * 2 - 1,
                                    (torch.rand(frames, 1, height, width, generator=generator) > 0.5).float())
    poses = torch.rand(frames, model.pose_channels, height, width, generator=generator)
    return model.frame_conditions(appearance, poses, coarse, reference)


def test_the_coarse_channels_start_at_zero(tiny_frame_model):
    model = tiny_frame_model(0, *V2, pose_path=False)
    channels = model.sample_shape[0]
    assert model.unet.conv_in.weight.shape[1] == channels + model.pose_channels + channels + 1
    assert not model.unet.conv_in.weight[:, channels:].any()
    with torch.no_grad():
        given = conditions(model)
        noisy, timesteps = torch.randn(3, *model.sample_shape), torch.full((3,), 500)
        with_coarse = model.predict(noisy, timesteps, given)
        keep = torch.ones(3, dtype=torch.bool)
        without = model.predict(noisy, timesteps, given.masked(keep, keep, keep, ~keep, keep))
    assert torch.equal(with_coarse, without)


def test_the_reference_features_reach_every_self_attention_and_matter(tiny_frame_model):
    model = tiny_frame_model(0, *V2)
    with torch.no_grad():
        given = conditions(model)
        layers = [name for name in given.reference.bank]
        assert len(layers) >= 4 and all(name.endswith("attn1.processor") for name in layers)
        noisy, timesteps = torch.randn(3, *model.sample_shape), torch.full((3,), 500)
        keep = torch.ones(3, dtype=torch.bool)
        read = model.predict(noisy, timesteps, given)
        dropped = model.predict(noisy, timesteps, given.masked(keep, keep, keep, keep, ~keep))
    assert (read - dropped).abs().max() > 1e-4


def test_guidance_modes_batch_the_reference_rows(tiny_frame_model):
    model = tiny_frame_model(0, *V2)
    with torch.no_grad():
        given = conditions(model, frames=2)
        batched = given.in_modes(["uncond", "appearance", "full"])
        noisy = torch.randn(2, *model.sample_shape)
        together = model.predict(torch.cat([noisy] * 3), torch.full((6,), 300), batched)
        alone = model.predict(noisy, torch.full((2,), 300), given)
    assert batched.reference.keep.tolist() == [False, False, True, True, True, True]
    assert torch.allclose(together[4:], alone, atol=1e-5)


def test_a_v2_model_saves_and_loads_bit_identically(tiny_frame_model, tmp_path):
    model = tiny_frame_model(0, *V2)
    model.save_pretrained(tmp_path / "v2")
    loaded = FrameModel.from_pretrained(tmp_path / "v2")
    assert loaded.coarse_image and loaded.reference_attention
    with torch.no_grad():
        noisy, timesteps = torch.randn(3, *model.sample_shape), torch.full((3,), 700)
        first = model.predict(noisy, timesteps, conditions(model))
        second = loaded.predict(noisy, timesteps, conditions(loaded))
    assert torch.equal(first, second)


def test_v2_pairs_train_the_denoiser(tiny_frame_model, synthsign_corpus):
    from signgen.corpora.samplers import frame_pair_dataset
    from signgen.training.frame import DiffusionObjective

    model = tiny_frame_model(0, *V2, train=True)
    pairs = frame_pair_dataset(synthsign_corpus, "train", model.resolution, coarse_image=True)
    batch = {key: torch.stack([pairs[i][key] for i in range(4)]) for key in pairs[0]}
    assert batch["coarse"].shape == batch["source"].shape and batch["uncovered"].shape[1] == 1

    class Dropout:
        uncond_prob, appearance_only_prob, hand_loss_weight = 0.0, 0.0, 0.0

    loss = DiffusionObjective(model, Dropout())(batch)
    loss.backward()
    channels = model.sample_shape[0]
    assert torch.isfinite(loss)
    assert model.unet.conv_in.weight.grad[:, channels + model.pose_channels:].abs().sum() > 0  # the coarse path learns


def test_a_coarse_residual_model_trains_on_the_difference_from_the_coarse_image(tiny_frame_model, synthsign_corpus):
    from signgen.corpora.samplers import frame_pair_dataset
    from signgen.training.frame import DiffusionObjective

    model = tiny_frame_model(0, *V2, "model.coarse_residual=true", train=True)
    pairs = frame_pair_dataset(synthsign_corpus, "train", model.resolution, coarse_image=True)
    batch = {key: torch.stack([pairs[i][key] for i in range(4)]) for key in pairs[0]}
    drawn = []
    add_noise = model.noise_scheduler.add_noise
    model.noise_scheduler.add_noise = lambda clean, noise, timesteps: drawn.append(clean) or add_noise(clean, noise, timesteps)

    class Dropout:  # every condition dropped: the residual's base must not be
        uncond_prob, appearance_only_prob, hand_loss_weight = 1.0, 0.0, 0.0

    DiffusionObjective(model, Dropout())(batch)
    assert torch.allclose(drawn[0], batch["target"] - batch["coarse"])


def test_a_coarse_residual_model_samples_around_the_coarse_image(tiny_frame_model, sample_frames):
    model = tiny_frame_model(0, *V2, "model.coarse_residual=true")
    height, width = model.resolution
    generator = torch.Generator().manual_seed(1)
    photo = torch.rand(3, height, width, generator=generator) * 2 - 1
    coarse = (torch.rand(4, 3, height, width, generator=generator) * 1.6 - 0.8, torch.zeros(4, 1, height, width))
    poses = torch.rand(4, model.pose_channels, height, width, generator=generator)
    with torch.no_grad():
        appearance = model.encode_appearance(photo[None])
        options = dict(frame_batch_size=4, scheduler="ddim", num_steps=3, seed=2, coarse=coarse,
                       reference=model.reference_features(photo[None], appearance))
        around_coarse = sample_frames(model, appearance, poses, **options)
        model.coarse_residual = False  # the same UNet read as drawing the image itself
        alone = sample_frames(model, appearance, poses, **options)
    assert torch.allclose(around_coarse, (alone + coarse[0]).clamp(-1, 1), atol=1e-5)
    assert not torch.allclose(around_coarse, alone, atol=1e-2)


def test_a_coarse_residual_needs_the_coarse_image(tiny_frame_model):
    from signgen.errors import SigngenError

    with pytest.raises(SigngenError, match="coarse_residual needs coarse_image"):
        tiny_frame_model(0, "model.coarse_residual=true")


@pytest.mark.parametrize("kind", ["epsilon", "v_prediction", "sample"])
def test_each_prediction_type_trains_towards_its_own_target(kind):
    from diffusers import DDIMScheduler, DDPMScheduler

    from signgen.models.denoiser import denoising_target

    schedule = DDPMScheduler(prediction_type=kind, clip_sample=False)
    generator = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(2, 3, 4, 4, generator=generator), torch.randn(2, 3, 4, 4, generator=generator)
    timesteps = torch.tensor([100, 800])
    noisy = schedule.add_noise(clean, noise, timesteps)
    target = denoising_target(schedule, clean, noise, timesteps)
    # A perfect prediction of the target takes a deterministic sampler to the clean sample.
    sampler = DDIMScheduler.from_config(schedule.config)
    sampler.set_timesteps(1000)
    for row, t in enumerate(timesteps.tolist()):
        estimate = sampler.step(target[row : row + 1], t, noisy[row : row + 1]).pred_original_sample
        assert torch.allclose(estimate, clean[row : row + 1], atol=1e-3)

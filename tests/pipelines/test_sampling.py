"""Sampling: schedulers by name, batched multi-condition guidance, batched frames (the render's
pieces, :mod:`signgen.pipelines.schedulers` and :func:`signgen.pipelines.denoising.denoise`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, HeunDiscreteScheduler

from signgen.models.denoiser import FrameConditions, sample_training_modes
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.pipelines.postprocess import frames_to_uint8
from signgen.pipelines.schedulers import GuidanceScales, guided_prediction, make_scheduler
from signgen.pipelines.settings import RenderSettings


@pytest.fixture(scope="module")
def model(tiny_frame_model) -> FrameModel:
    model = tiny_frame_model(0, size="32x24", pose_path=False)
    # An untrained pose path is zero; give it weight so that every guidance branch differs.
    with torch.no_grad():
        model.unet.conv_in.weight[:, 3:].normal_(0, 0.2)
    return model


@pytest.fixture(scope="module")
def inputs():
    generator = torch.Generator().manual_seed(1)
    source = torch.rand(3, 32, 24, generator=generator) * 2 - 1
    poses = torch.rand(5, 4, 32, 24, generator=generator)
    return source, poses


class CountingCalls:
    def __init__(self, module: torch.nn.Module):
        self.calls, self.batch_sizes = 0, []
        self.handle = module.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        self.calls += 1
        self.batch_sizes.append(len(args[0] if args else kwargs["sample"]))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_schedulers_by_short_name_and_by_class_name(model):
    config = model.noise_scheduler.config
    assert isinstance(make_scheduler("ddim", config), DDIMScheduler)
    dpm = make_scheduler("dpm", config)
    assert isinstance(dpm, DPMSolverMultistepScheduler) and dpm.config.algorithm_type == "dpmsolver++"
    assert isinstance(make_scheduler("euler", config), EulerDiscreteScheduler)
    assert isinstance(make_scheduler("HeunDiscreteScheduler", config), HeunDiscreteScheduler)
    # The training noise schedule carries over.
    assert make_scheduler("ddim", config).config.beta_schedule == config.beta_schedule
    for bad in ("warp-drive", "UNet2DConditionModel", "__import__"):
        with pytest.raises(SigngenError, match="unknown scheduler"):
            make_scheduler(bad, config)


def test_guidance_modes_drop_the_right_conditions():
    conditions = FrameConditions(torch.ones(2, 4, 8, 6), torch.ones(2, 5, 3), torch.ones(2, 7))
    batched = conditions.in_modes(["uncond", "appearance", "full"])
    assert len(batched) == 6
    assert batched.appearance_tokens[:2].abs().sum() == 0 and batched.appearance_tokens[2:].min() == 1
    assert batched.pose_maps[:4].abs().sum() == 0 and batched.pose_maps[4:].min() == 1
    assert batched.fusion_embedding[:4].abs().sum() == 0 and batched.fusion_embedding[4:].min() == 1


def test_training_dropout_hits_each_mode_at_its_rate():
    torch.manual_seed(0)
    appearance, pose, fusion, coarse, reference = sample_training_modes(20000, uncond_prob=0.1, appearance_only_prob=0.15)
    assert torch.equal(pose, fusion) and torch.equal(pose, coarse) and torch.equal(appearance, reference)
    assert abs((~appearance).float().mean().item() - 0.1) < 0.01
    assert abs((appearance & ~pose).float().mean().item() - 0.15) < 0.01
    assert not (pose & ~appearance).any()


def test_one_batched_guidance_call_equals_separate_calls(model, inputs):
    source, poses = inputs
    scales = GuidanceScales(appearance=1.7, full=2.5)
    with torch.no_grad():
        conditions = model.frame_conditions(model.encode_appearance(source[None]), poses)
        sample = torch.randn(5, 3, 32, 24, generator=torch.Generator().manual_seed(2))
        timestep = torch.tensor(600)
        with CountingCalls(model.unet) as counter:
            guided = guided_prediction(model, sample, timestep, conditions, scales)
        assert counter.calls == 1 and counter.batch_sizes == [15]

        separate = {}
        for mode in ("uncond", "appearance", "full"):
            separate[mode] = model.predict(sample, timestep, conditions.in_modes([mode]))
    expected = separate["uncond"] + 1.7 * (separate["appearance"] - separate["uncond"]) + 2.5 * (separate["full"] - separate["appearance"])
    assert not torch.allclose(separate["appearance"], separate["full"], atol=1e-4)
    assert not torch.allclose(separate["uncond"], separate["appearance"], atol=1e-4)
    torch.testing.assert_close(guided, expected, atol=1e-5, rtol=1e-4)


def test_unit_guidance_is_a_single_conditional_call(model, inputs):
    source, poses = inputs
    with torch.no_grad():
        conditions = model.frame_conditions(model.encode_appearance(source[None]), poses)
        sample = torch.randn(5, 3, 32, 24)
        with CountingCalls(model.unet) as counter:
            guided = guided_prediction(model, sample, torch.tensor(300), conditions, GuidanceScales(1.0, 1.0))
        assert counter.batch_sizes == [5]
        torch.testing.assert_close(guided, model.predict(sample, torch.tensor(300), conditions))


@pytest.mark.parametrize("scheduler", ["ddim", "dpm", "euler_a"])
def test_sampling_is_seeded_and_batched(model, inputs, scheduler, sample_frames):
    source, poses = inputs[0], inputs[1][:3]

    def sample(seed):
        return sample_frames(model, source, poses, scheduler=scheduler, num_steps=2, seed=seed, frame_batch_size=2)

    with CountingCalls(model.image_encoder) as encoder, CountingCalls(model.unet) as unet:
        frames = sample(11)
    assert frames.shape == (3, 3, 32, 24) and frames.min() >= -1 and frames.max() <= 1
    assert encoder.calls == 1, "the appearance is encoded once per video"
    assert unet.batch_sizes == [6, 3, 6, 3], "frames in batches of 2, three guidance modes each, one call per batch and step"
    assert torch.equal(frames, sample(11))
    assert not torch.allclose(frames, sample(12))


def test_guidance_applies_only_within_its_interval(model, inputs, sample_frames):
    source, poses = inputs[0], inputs[1][:2]
    scales = GuidanceScales(1.5, 2.0, interval=0.5)
    assert [scales.at_step(i, 4).is_identity for i in range(4)] == [False, False, True, True]
    assert [scales.at_step(i, 3).is_identity for i in range(3)] == [False, False, True]  # a started half counts
    assert GuidanceScales(1.5, 2.0, interval=0.0).at_step(0, 5).is_identity

    def sample(guidance: GuidanceScales):
        return sample_frames(model, source, poses, scheduler="ddim", num_steps=4, seed=2, appearance_scale=guidance.appearance,
                             full_scale=guidance.full, guidance_interval=guidance.interval)

    with CountingCalls(model.unet) as unet:
        half = sample(scales)
    assert unet.batch_sizes == [6, 6, 2, 2], "guided steps take the three modes at once, the others one call"
    assert torch.equal(sample(GuidanceScales(1.5, 2.0, interval=0.0)), sample(GuidanceScales(1.0, 1.0)))
    assert not torch.allclose(half, sample(GuidanceScales(1.5, 2.0)))
    # The scales a render uses are its settings'; the interval's range is checked there, once.
    assert GuidanceScales.of(RenderSettings(appearance_scale=1.2, full_scale=1.4, guidance_interval=0.3)) == GuidanceScales(1.2, 1.4, 0.3)
    with pytest.raises(SigngenError, match="render setting guidance_interval"):
        sample(GuidanceScales(1.5, 2.0, interval=1.5))


def test_deterministic_samplers_do_not_depend_on_the_frame_batch(model, inputs, sample_frames):
    source, poses = inputs
    one_batch = sample_frames(model, source, poses, scheduler="ddim", num_steps=3, seed=5, frame_batch_size=8)
    small_batches = sample_frames(model, source, poses, scheduler="ddim", num_steps=3, seed=5, frame_batch_size=2)
    torch.testing.assert_close(one_batch, small_batches, atol=1e-3, rtol=0)


def test_a_precomputed_appearance_encoding_is_reused(model, inputs, sample_frames):
    source, poses = inputs
    with torch.no_grad():
        appearance = model.encode_appearance(source[None])
    with CountingCalls(model.image_encoder) as encoder:
        from_encoding = sample_frames(model, appearance, poses[:2], num_steps=2, seed=3)
    assert encoder.calls == 0
    from_image = sample_frames(model, source, poses[:2], num_steps=2, seed=3)
    assert torch.equal(from_encoding, from_image)


def test_bad_sampling_inputs_are_user_errors(model, inputs, sample_frames):
    source, poses = inputs
    with pytest.raises(SigngenError, match="pose map must have shape"):
        sample_frames(model, source, torch.rand(2, 3, 32, 24), num_steps=1)
    with pytest.raises(SigngenError, match="pose maps must have shape"):
        sample_frames(model, source, torch.rand(4, 32, 24), num_steps=1)
    with pytest.raises(SigngenError, match="signer image must have shape"):
        sample_frames(model, torch.rand(3, 64, 52), poses, num_steps=1)
    with pytest.raises(SigngenError, match="num_steps"):
        sample_frames(model, source, poses, num_steps=0)


def test_frames_to_uint8():
    frames = torch.tensor([-1.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2).repeat(2, 3, 1, 1)
    video = frames_to_uint8(frames)
    assert video.shape == (2, 2, 2, 3) and video.dtype == np.uint8
    assert video[0, :, :, 0].tolist() == [[0, 128], [255, 255]]


def test_one_guidance_parser_for_the_command_lines_text_pair():
    """The guidance scales are two settings (appearance_scale, full_scale); ``--guidance A,F``
    is their one text shorthand, read by one parser, the range left to the settings."""
    import argparse

    from signgen.cli.options import guidance_pair

    assert guidance_pair("1.5,2.0") == (1.5, 2.0)
    assert guidance_pair(" 1 , 3 ") == (1.0, 3.0)
    assert guidance_pair("1e30,1") == (1e30, 1.0)  # the settings refuse it, not the parser
    for bad in ("strong", "1.5", "1,2,3", "", "1,x"):
        with pytest.raises(argparse.ArgumentTypeError, match="guidance needs two numbers"):
            guidance_pair(bad)
    scales = GuidanceScales.of(RenderSettings().replace(appearance_scale=1.0, full_scale=1.0))
    assert scales.is_identity and scales.interval == RenderSettings().guidance_interval
    with pytest.raises(SigngenError, match="render setting full_scale"):
        RenderSettings(full_scale=1e30)


def test_frame_wise_sampling_predicts_every_frame_once_per_step(model, inputs, sample_frames):
    """Frame-wise sampling is the windowed loop with contiguous, non-overlapping windows
    of frame_batch_size frames, the last one short: no frame is predicted twice."""
    from signgen.pipelines.denoising import plan_chunks

    source, poses = inputs
    assert plan_chunks(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert plan_chunks(3, 8) == [range(3)]
    with CountingCalls(model.unet) as unet:
        frames = sample_frames(model, source, poses, scheduler="ddim", num_steps=2, seed=4, frame_batch_size=2,
                               appearance_scale=1.0, full_scale=1.0)
    assert unet.batch_sizes == [2, 2, 1] * 2
    assert frames.shape == (5, 3, 32, 24)
    with pytest.raises(SigngenError, match="frame_batch_size"):
        sample_frames(model, source, poses, num_steps=1, frame_batch_size=0)


@pytest.mark.parametrize("name", ["euler_a", "PNDMScheduler"])
def test_a_sampler_that_cannot_take_the_prediction_type_is_one_line_before_any_work(name):
    from diffusers import DDPMScheduler

    from signgen.errors import SigngenError
    from signgen.pipelines.schedulers import make_scheduler, set_timesteps

    config = DDPMScheduler(prediction_type="sample").config
    with pytest.raises(SigngenError, match="cannot sample a model that predicts 'sample'"):
        set_timesteps(make_scheduler(name, config), 10, 1000)
    set_timesteps(make_scheduler("ddim", config), 10, 1000)  # a sampler that can: no error

"""Rendering chunk by chunk: the same frames as at once, drawn only as they are read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

V2 = ["model.coarse_image=true", "model.reference_attention=true"]
SETTINGS = {"num_steps": 2, "scheduler": "ddim", "keep_coarse": True, "noise_correlation": 0.5, "steady_torso": 2.0,
            "full_resolution": False, "hand_sharpen": 0.0}  # at the tiny models' size unless a test asks for the output size;
# hand_sharpen would double the deflicker filter's rare one-level rounding apart (chunked or whole), and it works frame
# by frame: its own test below


@pytest.fixture(scope="module")
def v2_pipeline(one_torch_thread):
    from conftest import make_frame_model, randomize_

    from signgen.pipelines.pipeline import SignPipeline
    from signgen.pipelines.settings import RenderSettings

    model = make_frame_model(0, *V2)
    randomize_(model.unet, seed=3)  # a drawing that differs from frame to frame
    return SignPipeline(model, None, RenderSettings().replace(**SETTINGS))


def test_the_frames_do_not_depend_on_the_chunk_size_nor_on_the_filter_crossing_chunks(v2_pipeline):
    options = dict(glosses="A B", seed=4, progress=False)
    whole = v2_pipeline(frame_batch_size=256, deflicker=2.0, **options)
    chunked = v2_pipeline(frame_batch_size=5, deflicker=2.0, **options)
    assert len(whole) > 3 * 5  # the video crosses chunks and the filter's reach crosses them
    # The filter's float arithmetic over a chunk's frames may round a pixel one grey level
    # apart from the same over the whole video, on some CPUs (vectorised loops and their
    # tails); seen: 7 of 32,256 values.
    apart = np.abs(whole.frames.astype(np.int16) - chunked.frames.astype(np.int16))
    assert apart.max() <= 1 and (apart > 0).mean() < 1e-3
    unfiltered = v2_pipeline(frame_batch_size=5, deflicker=0.0, **options)
    assert np.array_equal(unfiltered.frames, v2_pipeline(frame_batch_size=256, deflicker=0.0, **options).frames)
    assert not np.array_equal(unfiltered.frames, chunked.frames)  # the filter did act
    # At the output size the same: up to one rounding step, since torch's CPU convolutions
    # draw the last frames of a batch ~1e-4 apart from the same frames mid-batch, and the
    # upscaled frame has 200 times the pixels of this tiny model's to round on.
    whole, chunked = (v2_pipeline(glosses="A B", seed=4, progress=False, frame_batch_size=size, deflicker=2.0,
                                  full_resolution=True).frames for size in (256, 5))
    assert whole.shape[1:3] == (260, 210)
    assert np.abs(whole.astype(np.int16) - chunked.astype(np.int16)).max() <= 1


def test_a_stream_draws_its_frames_only_as_they_are_read(v2_pipeline, monkeypatch):
    import signgen.pipelines.streaming as streaming

    calls = []
    real = streaming.denoise
    monkeypatch.setattr(streaming, "denoise", lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    stream = v2_pipeline(stream=True, glosses="A", seed=1, progress=False, frame_batch_size=4, deflicker=0.0)
    assert calls == []
    first = next(stream.chunks)
    assert len(calls) == 1 and first.shape == (4, *v2_pipeline.resolution, 3) and first.dtype == np.uint8
    rest = list(stream.chunks)
    assert len(calls) == 1 + len(rest) and sum(map(len, rest)) + 4 == len(stream)


def test_initial_noise_read_by_ranges_is_the_noise_drawn_at_once():
    from signgen.pipelines.denoising import InitialNoise

    shape, frames = (3, 8, 6), 37
    generator = torch.Generator().manual_seed(9)
    own = torch.randn((frames, *shape), generator=generator)
    shared = torch.randn((1, *shape), generator=generator)
    noise = InitialNoise(9, frames, shape, correlation=0.25, chunk=16)
    for start, stop in ((0, 37), (5, 21), (16, 17), (30, 37)):
        expected = 0.25**0.5 * shared + 0.75**0.5 * own[start:stop]
        assert torch.equal(noise.frames(start, stop), expected)
    assert torch.equal(InitialNoise(9, frames, shape).frames(3, 9), own[3:9])


def test_full_resolution_composes_at_the_output_size_from_the_photo_warped_there(v2_pipeline):
    from signgen.pipelines.postprocess import OUTPUT_SIZE, compose_at

    low = v2_pipeline(glosses="A", seed=2, progress=False)
    full = v2_pipeline(glosses="A", seed=2, progress=False, full_resolution=True)
    assert low.frames.shape[1:3] == v2_pipeline.resolution and full.frames.shape[1:3] == OUTPUT_SIZE
    assert len(full) == len(low)

    drawn = torch.full((1, 3, 16, 12), 0.5)
    photo = torch.linspace(-1, 1, 3 * 32 * 24).view(1, 3, 32, 24)
    uncovered = torch.zeros(1, 1, 32, 24)
    uncovered[..., :8, :8] = 1.0
    composed = compose_at((32, 24), drawn, (photo, uncovered))
    assert torch.equal(composed[..., 16:, 12:], photo[..., 16:, 12:])  # far from the uncovered corner: the photo
    assert torch.allclose(composed[..., :4, :4], torch.full((1, 3, 4, 4), 0.5), atol=1e-6)  # inside it: the drawing
    # The drawing reaches one output pixel past the uncovered corner (and the feather one more), not a
    # band scaled up with the model's pixels (a soft halo along every moving arm).
    assert torch.equal(composed[..., 10:, :], photo[..., 10:, :]) and torch.equal(composed[..., :, 10:], photo[..., :, 10:])


def test_a_streamed_render_is_written_whole_with_its_skeleton(v2_pipeline, tmp_path):
    from signgen.pipelines.postprocess import OUTPUT_SIZE, write_render
    from signgen.video.io import read_video

    stream = v2_pipeline(stream=True, glosses="A", seed=1, progress=False, frame_batch_size=4, deflicker=0.0)
    path = write_render(stream, tmp_path / "a.mp4", side_by_side=True)
    frames = read_video(path)
    assert len(frames) == len(stream) and frames.shape[1] >= OUTPUT_SIZE[0] and frames.shape[2] >= 2 * OUTPUT_SIZE[1]  # labels above


def tiny_hand_model(randomized: bool):
    from signgen.models.hands import HandModel

    torch.manual_seed(0)
    model = HandModel(crop_size=16, patch_size=1, block_out_channels=(8, 16), norm_num_groups=4, attention_head_dim=8)
    if randomized:
        with torch.no_grad():
            for parameter in model.unet.conv_out.parameters():
                parameter.normal_(0, 0.2)
    return model.eval()


def test_the_hand_stage_redraws_hands_at_full_resolution_and_travels_with_the_pipeline(v2_pipeline, tmp_path):
    from signgen.pipelines.pipeline import SignPipeline, load_pipeline

    options = dict(glosses="A", seed=2, progress=False, full_resolution=True, frame_batch_size=4, deflicker=0.0)
    plain = v2_pipeline(**options)
    untrained = SignPipeline(v2_pipeline.frame_model, None, v2_pipeline.settings, tiny_hand_model(False))
    assert np.array_equal(untrained(**options).frames, plain.frames)  # a zero residual changes nothing
    trained = SignPipeline(v2_pipeline.frame_model, None, v2_pipeline.settings, tiny_hand_model(True))
    redrawn = trained(**options).frames
    assert not np.array_equal(redrawn, plain.frames)
    assert np.array_equal(trained(**{**options, "hand_steps": 0}).frames, plain.frames)
    # One hand noise for every chunk: other chunks only batch the hand model differently (float rounding).
    other_chunks = trained(**{**options, "frame_batch_size": 64}).frames
    assert np.abs(other_chunks.astype(int) - redrawn).max() <= 2
    trained.save_pretrained(tmp_path / "with_hands")
    again = load_pipeline(tmp_path / "with_hands")
    assert again.hand_model is not None and np.array_equal(again(**options).frames, redrawn)


def test_kept_background_changes_only_the_composed_frame_not_the_models_condition(v2_pipeline, monkeypatch):
    import signgen.pipelines.streaming as streaming

    real, calls = streaming.coarse_images, []

    def recording(warper, geometry, frames=slice(None), keep_background=False):
        calls.append((geometry.resolution, keep_background))
        return real(warper, geometry, frames, keep_background=keep_background)

    monkeypatch.setattr(streaming, "coarse_images", recording)
    options = dict(glosses="A", seed=2, progress=False, full_resolution=True, deflicker=0.0)
    kept = v2_pipeline(keep_background=True, **options).frames
    assert {keep for size, keep in calls if size == v2_pipeline.resolution} == {False}  # the model's condition
    assert {keep for size, keep in calls if size != v2_pipeline.resolution} == {True}  # the composed frame
    calls.clear()
    drawn = v2_pipeline(keep_background=False, **options).frames
    assert {keep for _, keep in calls} == {False}
    assert not np.array_equal(kept, drawn)  # the photo's arm moved away: background where the model drew


def test_the_finished_frames_hands_are_sharpened_as_the_setting_says(v2_pipeline):
    from signgen.pipelines.postprocess import sharpened_hands
    from signgen.poses.holistic import pose_arrays

    options = dict(glosses="A B", seed=2, progress=False, full_resolution=True, frame_batch_size=4, deflicker=2.0)
    plain, sharp = v2_pipeline(hand_sharpen=0.0, **options), v2_pipeline(hand_sharpen=1.0, **options)
    xy, confidence = pose_arrays(sharp.pose)
    dims = sharp.pose.header.dimensions
    height, width = sharp.frames.shape[1:3]
    in_pixels = xy * [width / dims.width, height / dims.height]
    assert not np.array_equal(sharp.frames, plain.frames)
    # The last step of a render: on the deflickered frames, each hand's box as sharpened_hands has it.
    assert np.array_equal(sharp.frames, sharpened_hands(plain.frames, in_pixels, confidence, 1.0))

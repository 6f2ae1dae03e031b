import pytest
import torch

from signgen.errors import SigngenError
from signgen.pipelines.denoising import WindowedPrediction, blend_weights, plan_windows, seam_transitions


def test_fifty_frames_in_windows_of_sixteen_overlapping_by_four_cover_every_frame():
    windows = plan_windows(50, window_size=16, overlap=4)

    assert all(len(window) == 16 for window in windows)
    assert windows[0].start == 0 and windows[-1].stop == 50
    covered = sorted({frame for window in windows for frame in window})
    assert covered == list(range(50))
    for left, right in zip(windows, windows[1:]):
        assert left.stop - right.start >= 4

    weights = blend_weights(windows, 50)
    assert weights.shape == (len(windows), 50)
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(50, dtype=torch.float64))
    for k, window in enumerate(windows):
        outside = [f for f in range(50) if f not in window]
        assert (weights[k, outside] == 0).all()
        assert (weights[k, window.start : window.stop] > 0).all()


def test_blended_video_has_every_frame_and_tapers_across_overlaps():
    num_frames, channels = 50, 2
    calls = []

    def predict(sample, timestep, frame_index, window_frames):
        calls.append(frame_index.tolist())
        assert window_frames == 16 and len(frame_index) % 16 == 0
        # Each window "predicts" the index of its first frame everywhere.
        starts = frame_index.view(-1, window_frames)[:, :1].repeat(1, window_frames).flatten()
        return starts.float().view(-1, 1, 1, 1).expand_as(sample)

    windowed = WindowedPrediction(predict, num_frames, window_size=16, overlap=4, windows_per_batch=3)
    result = windowed(torch.zeros(num_frames, channels, 4, 3), timestep=10)

    assert result.shape == (num_frames, channels, 4, 3)
    assert sorted(f for call in calls for f in call) == sorted(f for w in windowed.windows for f in w)
    assert len(calls) == 2  # four windows, three per batch
    per_frame = result[:, 0, 0, 0]
    starts = [w.start for w in windowed.windows]
    # Frames seen by one window only take that window's prediction exactly ...
    assert per_frame[0] == 0 and per_frame[20] == starts[1] and per_frame[49] == starts[-1]
    # ... and inside an overlap the weight moves steadily from one window to the next.
    overlap = range(windowed.windows[1].start, windowed.windows[0].stop)
    values = per_frame[list(overlap)]
    assert (values > starts[0]).all() and (values < starts[1]).all()
    assert (values.diff() > 0).all()


def test_blending_a_prediction_that_windows_agree_on_returns_it_unchanged():
    video = torch.randn(23, 3, 5, 4)

    def predict(sample, timestep, frame_index, window_frames):
        return sample * 2 + frame_index.view(-1, 1, 1, 1)

    result = WindowedPrediction(predict, 23, window_size=8, overlap=3)(video, timestep=1)
    torch.testing.assert_close(result, video * 2 + torch.arange(23).view(-1, 1, 1, 1).float())


def test_short_video_is_one_window():
    assert plan_windows(5, window_size=16, overlap=4) == [range(5)]
    torch.testing.assert_close(blend_weights([range(5)], 5), torch.ones(1, 5, dtype=torch.float64))


@pytest.mark.parametrize("window_size, overlap", [(16, 16), (16, -1), (0, 0)])
def test_impossible_window_plans_are_user_errors(window_size, overlap):
    with pytest.raises(SigngenError):
        plan_windows(50, window_size, overlap)


def test_windowed_sampling_encodes_the_appearance_once_and_with_an_untrained_adapter_equals_frame_wise_sampling(
        tiny_frame_model, tiny_adapter, randomize, sample_frames):
    model = tiny_frame_model()
    generator = torch.Generator().manual_seed(0)
    signer = torch.rand(3, *model.resolution, generator=generator) * 2 - 1
    poses = torch.rand(9, model.pose_channels, *model.resolution, generator=generator)
    options = {"scheduler": "ddim", "num_steps": 2, "seed": 3}
    adapter = tiny_adapter(model)
    encodings = []
    hook = model.image_encoder.register_forward_hook(lambda *_: encodings.append(1))
    try:
        video = sample_frames(model, signer, poses, adapter, window_size=4, overlap=1, windows_per_batch=2, **options)
    finally:
        hook.remove()

    assert encodings == [1]
    assert video.shape == (9, 3, *model.resolution)
    # Float noise only: windows batch frames differently from frame-wise sampling.
    torch.testing.assert_close(video, sample_frames(model, signer, poses, **options), rtol=0, atol=1e-3)
    moved = sample_frames(model, signer, poses, randomize(adapter), window_size=4, overlap=1, **options)
    assert (moved - video).abs().amax(dim=(1, 2, 3)).min() > 0.1  # every frame, seams included, sees the adapter


def test_no_window_weight_jumps_at_a_seam():
    windows = plan_windows(50, window_size=16, overlap=4)
    weights = blend_weights(windows, 50)
    # Across each overlap of 4 frames a window's share moves in steps of at most 1/5.
    assert weights.diff(dim=1).abs().max() <= 1 / 5 + 1e-6
    seams = seam_transitions(windows, 50)
    expected = {w.start - 1 for w in windows[1:]} | {w.stop - 1 for w in windows[:-1]}
    assert set(torch.nonzero(seams).flatten().tolist()) == expected
    assert not seam_transitions([range(10)], 10).any()

"""Pose sizes checked before the memory is taken (issue 26, classes 6 and 7): a pose's
length is checked in seconds before it is resampled (50 frames at 0.001 fps would become
1.25 million frames), and `poses show` bounds the frame size, the length and a GIF's
memory from the header before drawing; a header too small for pose-format's line width
still draws. Each refusal is one line, allocates next to nothing and writes nothing."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import GSG_A

from signgen.errors import SigngenError
from signgen.poses.holistic import pose_arrays, pose_from_arrays, reduce_to_178
from signgen.poses.io import read_pose, write_pose

# A refusal must come before the allocation it prevents: far below one drawn or resampled video.
ALLOWED_PEAK = 64 * 2**20


def pose_file(tmp_path, name, fps=25.0, size=(210, 260), frames=None):
    """GSG_A in 178 points, scaled to ``size``, at ``fps``, optionally cut to ``frames``."""
    xy, confidence = pose_arrays(reduce_to_178(read_pose(GSG_A)))
    if frames is not None:
        xy, confidence = xy[np.arange(frames) % len(xy)], confidence[np.arange(frames) % len(xy)]
    xy = xy * np.asarray(size, np.float32) / 500.0  # the clip's own frame is 500 x 500
    return write_pose(pose_from_arrays(xy, confidence, fps, *size), tmp_path / name)


def peak_while(call) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        call()
        error = None
    except BaseException as caught:  # noqa: BLE001 - the test inspects it
        error = caught
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


# ---------------------------------------------------------------- length before resampling


@pytest.mark.parametrize("fps, shown", [(0.001, "833.3 minutes"), (1e-30, "e+29 minutes")])
def test_a_slow_pose_is_refused_in_seconds_before_it_is_resampled(tmp_path, fps, shown):
    from signgen.poses.transform import prepare, resample

    pose = read_pose(pose_file(tmp_path, "slow.pose", fps=fps, frames=50))
    for call in (lambda: resample(reduce_to_178(pose)), lambda: prepare(pose)):
        error, peak = peak_while(call)
        assert isinstance(error, SigngenError), error
        assert shown in str(error) and "at most 30 minutes" in str(error)
        assert peak < ALLOWED_PEAK, f"{peak / 2**20:.0f} MiB taken before the refusal"


def test_a_slow_pose_on_the_command_line_is_one_line_and_no_video(tmp_path, tiny_pipelines, run_cli_fd, cli_error_line):
    path = pose_file(tmp_path, "slow.pose", fps=1e-30, frames=50)
    code, _, err = run_cli_fd("render", "--pose", path, "--model", tiny_pipelines["frame_only"], "-o", tmp_path / "out.mp4")
    assert code == 2
    assert "minutes long (50 frames at 1e-30 fps)" in cli_error_line(err, only=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.pose"]


def test_a_pose_at_the_cap_still_resamples(tmp_path):
    from signgen.poses.transform import resample

    pose = read_pose(pose_file(tmp_path, "ok.pose", fps=50 / 1800, frames=50))  # exactly 30 minutes
    assert len(resample(reduce_to_178(pose), fps=0.5).body.data) == 900


# ---------------------------------------------------------------- poses show


@pytest.mark.parametrize("case, make, message", [
    ("header of 60,000 x 60,000", dict(size=(60_000, 60_000)), "drawn at 60000 x 60000 pixels; at most 16,777,216"),
    ("longer than the cap", dict(fps=0.01, frames=50), "83.33 minutes long (50 frames at 0.01 fps)"),
])
@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_show_refuses_what_it_cannot_draw_before_drawing(case, make, message, suffix, tmp_path, run_cli_fd, cli_error_line):
    path = pose_file(tmp_path, "big.pose", **make)
    code, _, err = run_cli_fd("poses", "show", path, "-o", tmp_path / f"out{suffix}")
    assert code == 2
    assert message in cli_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pose"]


def test_the_drawing_functions_refuse_before_allocating(tmp_path):
    from signgen.poses.draw import draw_skeleton_frames, render_skeleton_video

    huge = read_pose(pose_file(tmp_path, "huge.pose", size=(60_000, 60_000)))
    gif = read_pose(pose_file(tmp_path, "gif.pose", size=(4000, 4000), frames=30))  # 1.3 GiB as one GIF
    for call, message in [(lambda: draw_skeleton_frames(huge), "at most 16,777,216"),
                          (lambda: draw_skeleton_frames(gif, size=(5000, 5000)), "at most 16,777,216"),
                          (lambda: render_skeleton_video(gif, tmp_path / "out.gif"), "1.3 GiB of memory (at most 1); write an .mp4")]:
        error, peak = peak_while(call)
        assert isinstance(error, SigngenError) and message in str(error), error
        assert peak < ALLOWED_PEAK, f"{peak / 2**20:.0f} MiB taken before the refusal"
    assert not (tmp_path / "out.gif").exists()


@pytest.mark.parametrize("size", [(1, 1), (40, 30)])
def test_a_tiny_header_draws_with_lines_at_least_a_pixel_wide(size, tmp_path, run_cli_fd):
    from signgen.video.io import read_video

    path = pose_file(tmp_path, "tiny.pose", size=size)
    code, _, err = run_cli_fd("poses", "show", path, "-o", tmp_path / "tiny.mp4", "--gif")
    assert code == 0, err
    frames = read_video(tmp_path / "tiny.mp4")
    assert frames.shape[0] == len(read_pose(path).body.data)
    if size == (40, 30):
        assert frames.min() < 128, "nothing drawn"
    assert (tmp_path / "tiny.gif").is_file()


def test_an_mp4_is_drawn_and_encoded_a_frame_at_a_time(tmp_path, monkeypatch):
    """A long video is never one array: the writer gets an iterator and the frames it
    encodes match the ones drawn whole."""
    import signgen.video.io
    from signgen.poses.draw import draw_skeleton_frames, render_skeleton_video
    from signgen.video.io import read_video

    pose = read_pose(pose_file(tmp_path, "clip.pose"))
    original, given = signgen.video.io.write_video, []
    monkeypatch.setattr(signgen.video.io, "write_video", lambda frames, *a, **k: given.append(type(frames)) or original(frames, *a, **k))
    render_skeleton_video(pose, tmp_path / "clip.mp4")
    assert given and not issubclass(given[0], np.ndarray)
    drawn, written = draw_skeleton_frames(pose).astype(int), read_video(tmp_path / "clip.mp4").astype(int)
    assert written.shape == drawn.shape and np.abs(written - drawn).mean() < 3

"""``signgen render``: tiny random-weight pipelines through the command line, and the
README's main command on the embedded default model."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import GSG_A

from signgen.cli.main import main
from signgen.pipelines.postprocess import OUTPUT_SIZE


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stitched_frames(glosses: str) -> int:
    from signgen.poses.stitch import glosses_to_pose

    return len(glosses_to_pose(glosses).body.data)


def render(*args) -> int:
    return main(["render", *map(str, args)])


def test_render_writes_one_video_frame_per_pose_frame(tiny_pipelines, tmp_path, capsys):
    from signgen.video.io import video_info

    out = tmp_path / "hallo.mp4"
    assert render("--gloss", "H A", "--model", tiny_pipelines["with_adapter"], "--seed", 1, "-o", out) == 0
    info = video_info(out)
    frames = stitched_frames("H A")
    assert (info.num_frames, info.height, info.width, info.fps) == (frames, *OUTPUT_SIZE, 25.0)
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    match = re.fullmatch(r"rendered (\d+) frames \(([\d.]+) s of video\) in ([\d.]+) s, ([\d.]+) frames/s: (.+)", summary)
    assert match, summary
    assert int(match[1]) == frames and match[5] == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["hallo.mp4"]


def test_render_from_a_pose_file_side_by_side_with_options(tiny_pipelines, tmp_path):
    from signgen.poses.io import read_pose
    from signgen.poses.transform import prepare
    from signgen.video.io import video_info

    out = tmp_path / "pose.mp4"
    code = render("--pose", GSG_A, "--model", tiny_pipelines["frame_only"], "--steps", 1, "--scheduler", "ddim",
                  "--guidance", "1,1", "--side-by-side", "-o", out)
    assert code == 0
    info = video_info(out)
    assert info.num_frames == len(prepare(read_pose(GSG_A)).body.data)
    assert info.width == 2 * OUTPUT_SIZE[1]


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown gloss", "QXZ"),
        ("missing photo", "signer photo not found"),
        ("output folder is a file", "output folder is not a folder"),
        ("output folder missing", "output folder does not exist"),
        ("output is a folder", "output path is a folder"),
        ("not an mp4", "must name an .mp4"),
        ("frame model as --model", "frame model folder, not a pipeline"),
        ("adapter as --model", "temporal adapter folder"),
        ("bad guidance", "guidance needs two numbers"),
        ("bad scheduler", "unknown scheduler"),
        ("g2p with pose", "do not apply to --pose"),
        ("broken photo", "not an image file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_partial_video(tiny_pipelines, tmp_path, file_as_folder, capsys, case, message, cli_error_line):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out.mp4"
    model = ["--model", tiny_pipelines["frame_only"]]
    broken = work / "broken.png"
    broken.write_text("not a png")
    args = {
        "unknown gloss": ["--gloss", "A QXZ", "--on-missing", "error", *model, "-o", out],
        "missing photo": ["--gloss", "A", "--signer", work / "nobody.png", *model, "-o", out],
        "output folder is a file": ["--gloss", "A", *model, "-o", file_as_folder / "out.mp4"],
        "output folder missing": ["--gloss", "A", *model, "-o", work / "no" / "out.mp4"],
        "output is a folder": ["--gloss", "A", *model, "-o", work.parent / "work.mp4"],
        "not an mp4": ["--gloss", "A", *model, "-o", work / "out.avi"],
        "frame model as --model": ["--gloss", "A", "--model", tiny_pipelines["frame_model"], "-o", out],
        "adapter as --model": ["--gloss", "A", "--model", tiny_pipelines["adapter"], "-o", out],
        "bad guidance": ["--gloss", "A", *model, "--guidance", "strong", "-o", out],
        "bad scheduler": ["--gloss", "A", *model, "--scheduler", "nonsense", "-o", out],
        "g2p with pose": ["--pose", GSG_A, "--g2p", work, *model, "-o", out],
        "broken photo": ["--gloss", "A", "--signer", broken, *model, "-o", out],
    }[case]
    if case == "output is a folder":
        (work.parent / "work.mp4").mkdir()
    assert render(*args) == 2
    assert message in cli_error_line(capsys.readouterr().err, only=False)
    assert sorted(p.name for p in work.iterdir()) == ["broken.png"]  # no mp4, no temporary file


def test_the_default_guidance_scales_on_the_command_line_give_the_default_frames(tiny_pipelines, tmp_path, monkeypatch):
    """--guidance A,F sets the scales only: the steps they guide stay the pipeline's
    guidance_interval (0.5 here, as in the embedded default), so giving the default scales
    changes nothing (it used to guide every step)."""
    import signgen.pipelines.postprocess as postprocess
    from signgen.pipelines.pipeline import SignPipeline, load_pipeline

    halved = tmp_path / "halved"
    SignPipeline.assemble(tiny_pipelines["frame_model"], None, halved, num_steps=4, scheduler="ddim", guidance_interval=0.5)
    pipeline = load_pipeline(halved)
    settings = pipeline.settings
    assert (settings.appearance_scale, settings.full_scale, settings.guidance_interval) == (1.5, 2.0, 0.5)
    rendered = []
    # What signgen render writes, its frames read as the writer reads them.
    monkeypatch.setattr(postprocess, "write_render", lambda result, path, **kwargs: rendered.append(np.concatenate(list(result.chunks))))

    assert render("--gloss", "A", "--model", halved, "--seed", 4, "--guidance", "1.5,2.0", "-o", tmp_path / "a.mp4") == 0
    expected = pipeline(glosses="A", seed=4, progress=False).frames
    assert np.array_equal(rendered[0], expected)
    # Guiding every step (the old reading of --guidance) renders other frames.
    every_step = pipeline(glosses="A", seed=4, progress=False, guidance_interval=1.0).frames
    assert not np.array_equal(every_step, expected)
    # --guidance A,F is --appearance-scale A --full-scale F.
    assert render("--gloss", "A", "--model", halved, "--seed", 4, "--appearance-scale", "1.0", "--full-scale", "1.0",
                  "-o", tmp_path / "b.mp4") == 0
    assert render("--gloss", "A", "--model", halved, "--seed", 4, "--guidance", "1,1", "-o", tmp_path / "c.mp4") == 0
    assert np.array_equal(rendered[1], rendered[2]) and not np.array_equal(rendered[1], expected)
    assert np.array_equal(rendered[1], pipeline(glosses="A", seed=4, progress=False, appearance_scale=1.0, full_scale=1.0).frames)


def test_a_failure_while_writing_leaves_no_partial_video(tiny_pipelines, tmp_path, monkeypatch, capsys):
    import av

    def failing_encode(*args, **kwargs):
        raise av.FFmpegError(1, "disk full")

    out = tmp_path / "out.mp4"
    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing_encode)
    with pytest.raises(av.FFmpegError):
        render("--gloss", "A", "--model", tiny_pipelines["frame_only"], "--steps", 1, "-o", out)
    assert list(tmp_path.iterdir()) == []


def test_render_with_every_default_on_the_embedded_model(tmp_path, capsys):
    """The README's main command with nothing but glosses and an output: the embedded
    default model, the bundled photo and lexicon (needs signgen/assets/default_pipeline).
    Two denoising steps keep it fast; the frames' content is checked in test_pipeline.py."""
    from signgen.video.io import video_info

    out = tmp_path / "hallo.mp4"
    assert render("--gloss", "H A", "--steps", 2, "-o", out) == 0, capsys.readouterr().err
    info = video_info(out)
    assert (info.num_frames, info.height, info.width) == (stitched_frames("H A"), *OUTPUT_SIZE)


@pytest.mark.parametrize("argv, message", [
    (["--steps", "1", "--set", "num_steps=abc"], "given twice"),
    (["--set", "scheduler="], "--set scheduler needs a value"),
])
def test_a_setting_given_twice_or_without_a_value_is_one_line(tmp_path, argv, message, capsys, cli_error_line):
    out = tmp_path / "a.mp4"
    assert main(["render", "--gloss", "A", *argv, "-o", str(out)]) == 2
    assert message in cli_error_line(capsys.readouterr().err)
    assert not out.exists()

"""The render pipeline: tiny_pipelines, loading, rendering, writing; tiny random-weight models,
except the last test, which checks the embedded default model itself."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import GSG_A

from signgen.errors import SigngenError
from signgen.pipelines.pipeline import RenderResult, SignPipeline, load_pipeline
from signgen.pipelines.postprocess import OUTPUT_SIZE, upscale_frames, write_render
from signgen.pipelines.settings import RenderSettings
from signgen.corpora.signer_photo import default_identity, render_signer_photo
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO

# A garment colour far from the bundled signer's dark green: magenta.
OTHER_GARMENT = (113, 15, 80)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def frame_only(tiny_pipelines) -> SignPipeline:
    return load_pipeline(tiny_pipelines["frame_only"])


@pytest.fixture(scope="session")
def with_adapter(tiny_pipelines) -> SignPipeline:
    return load_pipeline(tiny_pipelines["with_adapter"])


def stitched_frames(glosses: str) -> int:
    from signgen.poses.stitch import glosses_to_pose

    return len(glosses_to_pose(glosses).body.data)


# ------------------------------------------------------------------ rendering


@pytest.mark.parametrize("name", ["frame_only", "with_adapter"])
def test_one_frame_per_pose_frame_from_glosses(request, name, tiny_pipeline_settings):
    pipeline = request.getfixturevalue(name)
    result = pipeline(glosses="H A", progress=False)
    expected = stitched_frames("H A")
    assert expected > tiny_pipeline_settings["window_size"]  # the adapter path blends several windows
    assert isinstance(result, RenderResult)
    assert result.frames.shape == (expected, *pipeline.resolution, 3)
    assert result.frames.dtype == np.uint8
    assert len(result.pose.body.data) == expected
    assert result.fps == 25.0


def test_a_pose_file_drives_the_render_at_25_fps(frame_only):
    from signgen.poses.io import read_pose
    from signgen.poses.transform import prepare

    source = read_pose(GSG_A)  # 30 fps, 586 points
    result = frame_only(pose=GSG_A, progress=False)
    expected = len(prepare(source).body.data)
    assert expected != len(source.body.data)  # resampled from 30 to 25 fps
    assert len(result.frames) == len(result.pose.body.data) == expected
    assert np.array_equal(frame_only(pose=source, progress=False).frames, result.frames)


@pytest.mark.parametrize("name", ["frame_only", "with_adapter"])
def test_the_same_seed_gives_bit_identical_frames(request, name):
    pipeline = request.getfixturevalue(name)
    first = pipeline(glosses="A", seed=3, progress=False).frames
    again = pipeline(glosses="A", seed=3, progress=False).frames
    other = pipeline(glosses="A", seed=4, progress=False).frames
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_adapter_changes_the_frames(frame_only, with_adapter):
    # Same frame model, same noise: only the (randomised) temporal adapter differs.
    assert not np.array_equal(frame_only(glosses="A", progress=False).frames, with_adapter(glosses="A", progress=False).frames)


def test_the_signer_photo_is_used_and_can_be_encoded_once(frame_only, tmp_path):
    from PIL import Image

    other_photo = tmp_path / "other.png"
    Image.fromarray(render_signer_photo(garment=OTHER_GARMENT)).save(other_photo)
    bundled = frame_only(glosses="A", progress=False).frames
    assert np.array_equal(frame_only(glosses="A", signer=DEFAULT_SIGNER_PHOTO, progress=False).frames, bundled)
    other = frame_only(glosses="A", signer=other_photo, progress=False).frames
    assert not np.array_equal(other, bundled)
    encoding = frame_only.encode_signer(other_photo)
    assert np.array_equal(frame_only(glosses="A", signer=encoding, progress=False).frames, other)


def test_steps_scheduler_and_guidance_override_the_pipelines_settings(frame_only, tiny_pipeline_settings):
    default = frame_only(glosses="A", progress=False).frames
    own = frame_only.settings
    assert (own.num_steps, own.scheduler, own.appearance_scale, own.full_scale) == (tiny_pipeline_settings["num_steps"], "ddim", 1.5, 2.0)
    same = frame_only(glosses="A", num_steps=tiny_pipeline_settings["num_steps"], scheduler="ddim", appearance_scale=1.5,
                      full_scale=2.0, progress=False).frames
    assert np.array_equal(same, default)
    for changed in ({"num_steps": 3}, {"scheduler": "dpm"}, {"appearance_scale": 1.0, "full_scale": 1.0}, {"guidance_interval": 1.0}):
        assert not np.array_equal(frame_only(glosses="A", progress=False, **changed).frames, default), changed
    assert frame_only.settings == own  # a render's settings are its own: the pipeline's stay


def test_a_learned_gloss_to_pose_callable_drives_the_render(frame_only):
    from signgen.poses.stitch import glosses_to_pose

    asked = []

    def gloss_to_pose(glosses):
        asked.append(list(glosses))
        return glosses_to_pose(["B"])

    result = frame_only(glosses="HALLO WELT", g2p=gloss_to_pose, progress=False)
    assert asked == [["HALLO", "WELT"]]
    assert len(result.frames) == stitched_frames("B")


@pytest.mark.parametrize(
    "call, message",
    [
        ({}, "either glosses or a pose"),
        ({"glosses": "A", "pose": GSG_A}, "either glosses or a pose"),
        ({"glosses": "A", "num_steps": 0}, "render setting num_steps"),
        ({"glosses": "A", "steps": 3}, "unknown render setting\\(s\\) steps"),
        ({"glosses": "A", "scheduler": "nonsense"}, "unknown scheduler"),
        ({"glosses": "A", "appearance_scale": (1.0,)}, "render setting appearance_scale"),
        ({"glosses": "A", "signer": "/no/such/photo.png"}, "signer image not found"),
        ({"glosses": "A QXZ", "on_missing": "error"}, "QXZ"),
        ({"pose": "/no/such/file.pose"}, "pose file not found"),
        ({"glosses": "A", "g2p": "/no/such/g2p"}, "g2p"),
    ],
)
def test_bad_inputs_are_one_line_user_errors(frame_only, call, message):
    with pytest.raises(SigngenError, match=message) as error:
        frame_only(progress=False, **call)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------ tiny_pipelines and loading


def test_a_saved_pipeline_renders_the_same_frames(with_adapter, tmp_path):
    copy = load_pipeline(with_adapter.save_pretrained(tmp_path / "copy"))
    assert copy.settings == with_adapter.settings
    assert np.array_equal(copy(glosses="A", progress=False).frames, with_adapter(glosses="A", progress=False).frames)


def test_assemble_reads_training_output_folders(tiny_pipelines, tmp_path):
    import shutil

    import yaml

    frame_run, adapter_run = tmp_path / "frame_run", tmp_path / "temporal_run"
    shutil.copytree(tiny_pipelines["frame_model"], frame_run / "model")
    shutil.copytree(tiny_pipelines["adapter"], adapter_run / "model")
    (adapter_run / "config.yaml").write_text(yaml.safe_dump({"train": {"num_frames": 12}, "windows": {"overlap": 3, "windows_per_batch": 2}}))
    pipeline = SignPipeline.assemble(frame_run, adapter_run, tmp_path / "pipeline", num_steps=4)
    assert (pipeline.settings.window_size, pipeline.settings.overlap, pipeline.settings.windows_per_batch) == (12, 3, 2)
    assert pipeline.settings.num_steps == 4
    saved = json.loads((tmp_path / "pipeline" / "pipeline.json").read_text())
    assert saved["window_size"] == 12 and saved["num_steps"] == 4
    assert json.loads((tmp_path / "pipeline" / "model_index.json").read_text())["kind"] == "signgen-pipeline"


def test_assemble_refuses_bad_settings_and_foreign_folders(tiny_pipelines, tmp_path):
    with pytest.raises(SigngenError, match="unknown render setting"):
        SignPipeline.assemble(tiny_pipelines["frame_model"], None, tmp_path / "a", steps=4)
    with pytest.raises(SigngenError, match="overlap"):
        SignPipeline.assemble(tiny_pipelines["frame_model"], None, tmp_path / "b", window_size=4, overlap=4)
    with pytest.raises(SigngenError, match="max_frames"):
        SignPipeline.assemble(tiny_pipelines["frame_model"], tiny_pipelines["adapter"], tmp_path / "c", window_size=64)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SigngenError, match="refusing to overwrite"):
        SignPipeline.assemble(tiny_pipelines["frame_model"], None, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "which, message",
    [
        ("frame_model", "frame model folder, not a pipeline"),
        ("adapter", "temporal adapter folder, not a signgen pipeline"),
        ("empty", "not a signgen pipeline folder"),
        ("missing", "model folder not found"),
        ("bad_settings", "pipeline.json: unknown render setting\\(s\\) speed"),
        ("no_adapter_weights", "temporal_adapter"),
    ],
)
def test_folders_of_the_wrong_kind_are_one_line_errors(tiny_pipelines, tmp_path, which, message):
    import shutil

    paths = {"frame_model": tiny_pipelines["frame_model"], "adapter": tiny_pipelines["adapter"], "empty": tmp_path, "missing": tmp_path / "nope"}
    if which in ("bad_settings", "no_adapter_weights"):
        paths[which] = shutil.copytree(tiny_pipelines["with_adapter"], tmp_path / which)
        if which == "bad_settings":
            (paths[which] / "pipeline.json").write_text(json.dumps({**json.loads((paths[which] / "pipeline.json").read_text()), "speed": 11}))
        else:
            shutil.rmtree(paths[which] / "temporal_adapter")
    with pytest.raises(SigngenError, match=message) as error:
        load_pipeline(paths[which])
    assert "\n" not in str(error.value)


def test_a_missing_embedded_model_is_a_clear_error(monkeypatch, tmp_path):
    import signgen.pipelines.pipeline

    monkeypatch.setattr(signgen.pipelines.pipeline, "DEFAULT_PIPELINE", tmp_path / "default_pipeline")
    with pytest.raises(SigngenError, match="embedded default model is missing"):
        load_pipeline(None)


def test_import_signgen_stays_light_and_exports_load_pipeline():
    code = (
        "import sys, signgen\n"
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules, 'heavy import'\n"
        "from signgen import load_pipeline\n"
        "from signgen.pipelines.pipeline import load_pipeline as direct\n"
        "assert load_pipeline is direct\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_render_settings_are_validated():
    from signgen.pipelines.schedulers import GuidanceScales

    with pytest.raises(SigngenError, match="num_steps"):
        RenderSettings(num_steps=0)
    assert GuidanceScales.of(RenderSettings(appearance_scale=1.0, full_scale=1.0)).is_identity


# --------------------------------------------------------------------- writing


def test_write_render_upscales_to_phoenix_size(frame_only, tmp_path):
    from signgen.video.io import read_video, video_info

    result = frame_only(glosses="A", progress=False, noise_correlation=0.0)  # frames that differ, to tell their order
    plain = write_render(result, tmp_path / "plain.mp4")
    info = video_info(plain)
    assert (info.num_frames, info.height, info.width, info.fps) == (len(result), *OUTPUT_SIZE, 25.0)
    wide = video_info(write_render(result, tmp_path / "wide.mp4", side_by_side=True))
    assert wide.num_frames == len(result) and wide.width == 2 * OUTPUT_SIZE[1] and wide.height > OUTPUT_SIZE[0]
    # The video holds the upscaled generated frames, up to H.264 coding loss.
    decoded = read_video(plain).astype(int)
    error = np.abs(decoded - upscale_frames(result.frames).astype(int)).mean()
    assert error < 0.2 * np.abs(decoded - upscale_frames(result.frames[::-1]).astype(int)).mean()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.mp4", "wide.mp4"]


def test_upscale_frames_uses_a_smooth_filter():
    frames = np.zeros((1, 4, 4, 3), np.uint8)
    frames[0, :, 2:] = 255
    big = upscale_frames(frames, (16, 16))
    assert big.shape == (1, 16, 16, 3)
    row = big[0, 8, :, 0].astype(int)
    assert row[0] < 32 and row[-1] > 223 and len(np.unique(row)) > 4  # an edge ramp, not two blocks


# ------------------------------------------------------- the embedded default model


def test_embedded_model_follows_the_garment_colour_of_the_photo(tmp_path):
    """The real check of appearance transfer: the bundled signer photo and the same
    signer in a magenta garment give videos whose chest shows each photo's garment colour.
    Needs the embedded default model in signgen/assets/default_pipeline."""
    from PIL import Image

    from signgen.poses.holistic import pose_arrays, pose_from_arrays
    from signgen.poses.stitch import glosses_to_pose
    from signgen.pipelines.signer_image import DEFAULT_SIGNER_POSE
    from signgen.poses.transform import PHOENIX_FRAMING

    pipeline = load_pipeline(None)
    photos = {"bundled": render_signer_photo(), "magenta": render_signer_photo(garment=OTHER_GARMENT)}
    assert default_identity().garment != OTHER_GARMENT
    # The chest, below the shoulders and inside them, in PHOENIX framing (the pipeline
    # places every pose there, so the chest stays in this box while the hands sign).
    center_x, shoulder_y = PHOENIX_FRAMING.shoulder_center
    half = 0.3 * PHOENIX_FRAMING.shoulder_width
    box = (center_x - half, shoulder_y + 15, center_x + half, PHOENIX_FRAMING.height - 10)  # left, top, right, bottom

    def chest_colour(frames: np.ndarray) -> np.ndarray:
        height, width = frames.shape[1:3]
        sx, sy = width / PHOENIX_FRAMING.width, height / PHOENIX_FRAMING.height
        left, top, right, bottom = round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy)
        return np.median(frames[:, top:bottom, left:right].reshape(-1, 3), axis=0)

    expected = {name: chest_colour(photo[None]) for name, photo in photos.items()}
    assert np.linalg.norm(expected["bundled"] - expected["magenta"]) > 60
    # A short clip keeps the test fast: 12 frames of fingerspelling, the pipeline's own settings.
    xy, confidence = pose_arrays(glosses_to_pose("A B"))
    pose = pose_from_arrays(xy[:12], confidence[:12], 25.0, PHOENIX_FRAMING.width, PHOENIX_FRAMING.height)
    rendered = {}
    for name, photo in photos.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(photo).save(path)
        # Both photos are the bundled drawing (one garment recoloured): the bundled pose is theirs.
        rendered[name] = chest_colour(pipeline(pose=pose, signer=path, signer_pose=DEFAULT_SIGNER_POSE, seed=0, progress=False).frames)
    for name, other in (("bundled", "magenta"), ("magenta", "bundled")):
        own = np.linalg.norm(rendered[name] - expected[name])
        foreign = np.linalg.norm(rendered[name] - expected[other])
        assert own < foreign, f"{name}: chest colour {rendered[name]} is closer to the other photo's garment ({own:.0f} vs {foreign:.0f})"


def test_embedded_model_draws_the_signer_in_the_driving_poses():
    """The frames follow the pose: what changes from frame to frame in the render (each
    pixel minus its mean over the clip, so the model's colour offset cancels) correlates
    with what changes in a SynthSign render of the same pose, frame by frame, and the
    check fails against the same pose played backwards. Needs the embedded default model."""
    from PIL import Image

    from signgen.corpora.cartoon import CartoonRenderer
    from signgen.poses.holistic import pose_arrays, pose_from_arrays
    from signgen.poses.transform import PHOENIX_FRAMING

    from signgen.pipelines.driving import pose_from_glosses, prepare_pose

    pipeline = load_pipeline(None)
    xy, confidence = pose_arrays(prepare_pose(pose_from_glosses("H A L L O")))
    every_third = np.arange(0, len(xy), 3)[:32]  # 32 frames spread over the whole word
    xy, confidence = xy[every_third], confidence[every_third]
    pose = pose_from_arrays(xy, confidence, 25.0, PHOENIX_FRAMING.width, PHOENIX_FRAMING.height)
    rendered = pipeline(pose=pose, seed=0, progress=False, keep_frame=True).frames
    height, width = rendered.shape[1:3]
    reference = CartoonRenderer(default_identity(), (PHOENIX_FRAMING.width, PHOENIX_FRAMING.height)).render(xy, confidence)
    reference = np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.BOX)) for frame in reference])

    def changes(frames: np.ndarray) -> np.ndarray:
        gray = frames.astype(float).mean(axis=-1)
        flat = (gray - gray.mean(axis=0)).reshape(len(gray), -1)
        return flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-9)

    correlation = changes(rendered) @ changes(reference).T  # [rendered frame, reference frame]
    aligned = np.diag(correlation)
    assert aligned.mean() > 0.2, aligned.round(2)
    assert (correlation.argmax(axis=1) == np.arange(len(correlation))).mean() > 0.25
    backwards = np.diag(changes(rendered) @ changes(reference[::-1]).T)
    assert backwards.mean() < aligned.mean() - 0.15, (aligned.mean(), backwards.mean())

"""Rendering with a v2 frame model: the photo's pose, coarse images, reference features, strength."""

from __future__ import annotations

import numpy as np
import pytest

from signgen.errors import SigngenError

V2 = ["model.coarse_image=true", "model.reference_attention=true"]
SETTINGS = {"num_steps": 3, "window_size": 8, "overlap": 2, "frame_batch_size": 8, "scheduler": "ddim",
            "full_resolution": False}  # at the tiny models' size


@pytest.fixture(scope="module")
def v2_pipelines(tmp_path_factory, one_torch_thread):
    from conftest import make_adapter, make_frame_model

    from signgen.pipelines.pipeline import SignPipeline

    root = tmp_path_factory.mktemp("v2")
    model = make_frame_model(0, *V2)
    model.save_pretrained(root / "frame_model")
    make_adapter(model, randomized=True).save_pretrained(root / "adapter", safe_serialization=True)
    SignPipeline.assemble(root / "frame_model", None, root / "frame_only", **SETTINGS)
    SignPipeline.assemble(root / "frame_model", root / "adapter", root / "with_adapter", **SETTINGS)
    return root


def test_the_photo_is_encoded_and_its_reference_computed_once_per_video(v2_pipelines):
    from signgen.pipelines.pipeline import load_pipeline

    pipeline = load_pipeline(v2_pipelines / "with_adapter")
    calls = []
    original = pipeline.frame_model.reference_features
    pipeline.frame_model.reference_features = lambda *args: calls.append(1) or original(*args)
    result = pipeline(glosses="A B", seed=1, progress=False)
    assert len(result) > SETTINGS["window_size"]  # the video crosses windows
    assert len(calls) == 1
    assert result.frames.dtype == np.uint8 and result.frames.shape[1:3] == pipeline.resolution


def test_a_saved_v2_pipeline_renders_the_same_frames_after_loading(v2_pipelines, tmp_path):
    from signgen.pipelines.pipeline import load_pipeline

    first = load_pipeline(v2_pipelines / "with_adapter")
    first.save_pretrained(tmp_path / "copy")
    again = load_pipeline(tmp_path / "copy")
    assert np.array_equal(first(glosses="A", seed=2, progress=False).frames, again(glosses="A", seed=2, progress=False).frames)


def test_the_bundled_signer_comes_with_its_pose(v2_pipelines):
    from signgen.pipelines.pipeline import load_pipeline
    from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE

    pipeline = load_pipeline(v2_pipelines / "frame_only")
    default = pipeline(glosses="A", seed=3, progress=False)
    explicit = pipeline(glosses="A", signer=DEFAULT_SIGNER_PHOTO, signer_pose=DEFAULT_SIGNER_POSE, seed=3, progress=False)
    assert np.array_equal(default.frames, explicit.frames)


def test_strength_starts_from_the_warped_photo(v2_pipelines):
    from signgen.pipelines.pipeline import load_pipeline

    pipeline = load_pipeline(v2_pipelines / "frame_only")
    encoding = pipeline.encode_signer()
    photo = np.asarray((encoding.photo.image.permute(1, 2, 0).numpy() + 1) * 127.5, np.float64)
    # The frames as drawn: neither the coarse image kept over them nor filtered over time.
    drawn = {"keep_coarse": False, "deflicker": 0}
    full = pipeline(glosses="A", signer=encoding, seed=4, progress=False, **drawn).frames.astype(np.float64)
    light = pipeline(glosses="A", signer=encoding, seed=4, strength=0.34, progress=False, **drawn).frames.astype(np.float64)
    # An untrained model draws noise from pure noise; started a third of the way from the
    # end, the frames keep much of the photo.
    assert np.abs(light - photo).mean() < np.abs(full - photo).mean() - 5
    with pytest.raises(SigngenError, match="render setting strength"):
        pipeline(glosses="A", seed=4, strength=1.5, progress=False)


def test_strength_needs_a_v2_model(tiny_pipelines):
    from signgen.pipelines.pipeline import load_pipeline

    with pytest.raises(SigngenError, match="strength below 1 needs a model that draws from the photo warped to the pose"):
        load_pipeline(tiny_pipelines["frame_only"])(glosses="A", strength=0.5, progress=False)


def test_a_photo_without_a_person_is_one_line(v2_pipelines, tmp_path, run_cli, cli_error_line):
    from PIL import Image

    Image.new("RGB", (120, 160), (90, 140, 200)).save(tmp_path / "sky.png")
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(*["render", "--gloss", "A", "--model", str(v2_pipelines / "frame_only"),
                            "--signer", str(tmp_path / "sky.png"), "-o", str(out)])
    assert code == 2 and "no person found in the signer photo" in cli_error_line(err, only=False)
    assert not out.exists()


@pytest.mark.parametrize("strength", ["0", "1.5", "nan", "-0.5"])
def test_strength_outside_its_range_is_one_line(v2_pipelines, tmp_path, run_cli, cli_error_line, strength):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(*["render", "--gloss", "A", "--model", str(v2_pipelines / "frame_only"),
                            f"--strength={strength}", "-o", str(out)])
    assert code == 2 and "render setting strength" in cli_error_line(err)
    assert not out.exists()


def test_keeping_the_coarse_image_leaves_the_model_only_its_uncovered_pixels():
    import torch

    from signgen.pipelines.postprocess import keep_coarse_pixels
    from signgen.pipelines.settings import RenderSettings

    generator = torch.Generator().manual_seed(0)
    frames, images = torch.rand(2, 2, 3, 20, 16, generator=generator) * 2 - 1
    uncovered = torch.zeros(2, 1, 20, 16)
    uncovered[:, :, 8:12, 6:10] = 1
    kept = keep_coarse_pixels(frames, (images, uncovered), grow=2)
    assert torch.equal(kept[..., :4, :], images[..., :4, :])  # far from the uncovered block: the coarse image
    assert torch.allclose(kept[..., 8:12, 6:10], frames[..., 8:12, 6:10])  # inside it: the drawn frame
    edge = kept[..., 8:12, 3] - images[..., 8:12, 3]  # a feathered edge just past the grown block
    assert edge.abs().max() > 0 and not torch.allclose(kept[..., 8:12, 3], frames[..., 8:12, 3])
    with pytest.raises(SigngenError, match="render setting keep_coarse"):
        RenderSettings(keep_coarse="yes")


def test_a_steady_torso_keeps_the_coarse_images_of_a_jittering_still_pose_still(v2_pipelines):
    import torch

    from signgen.pipelines.pipeline import load_pipeline
    from signgen.pipelines.settings import RenderSettings
    from signgen.pipelines.signer import coarse_images, driving_geometry, photo_warper, warp_source
    from signgen.poses.holistic import pose_from_arrays
    from signgen.poses.warp import FACE_POINTS

    pipeline = load_pipeline(v2_pipelines / "frame_only")
    encoding = pipeline.encode_signer()
    still, confidence = encoding.keypoints
    rng = np.random.default_rng(0)
    xy = np.repeat(still[None], 12, axis=0)
    rigid = np.r_[0, 1, FACE_POINTS]
    xy[:, rigid] += rng.normal(0, 0.7, (12, len(rigid), 2))  # a pose estimator's jitter, in model pixels
    height, width = pipeline.resolution
    jittering = pose_from_arrays(xy, np.repeat(confidence[None], 12, axis=0), 25.0, width, height)

    def flicker(steady: float) -> float:
        images, _ = coarse_images(photo_warper(warp_source(encoding, pipeline.resolution)), driving_geometry(jittering, pipeline.resolution, steady))
        return float(torch.diff(images, dim=0).abs().mean())

    assert flicker(3.0) < 0.6 * flicker(0.0)
    with pytest.raises(SigngenError, match="render setting steady_torso"):
        RenderSettings(steady_torso=-1.0)
    # A render's own steady_torso is the one its coarse images (kept where they cover the frame) are warped with.
    def render(steady: float) -> np.ndarray:
        return pipeline(pose=jittering, signer=encoding, keep_frame=True, steady_torso=steady, keep_coarse=True, deflicker=0,
                        num_steps=1, progress=False).frames

    steadied = render(3.0)
    assert np.array_equal(steadied, render(3.0)) and not np.array_equal(steadied, render(0.0))


def test_deflicker_calms_the_rendered_frames_and_the_same_seed_still_gives_the_same_video(v2_pipelines):
    from signgen.pipelines.pipeline import SignPipeline, load_pipeline
    from signgen.pipelines.settings import RenderSettings

    pipeline = load_pipeline(v2_pipelines / "frame_only")
    calmed = SignPipeline(pipeline.frame_model, None, pipeline.settings.replace(deflicker=4.0))

    def change(frames: np.ndarray) -> float:
        return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean())

    plain = pipeline(glosses="A B", seed=3, deflicker=0, progress=False).frames
    first, again = (calmed(glosses="A B", seed=3, progress=False).frames for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert first.shape == plain.shape
    assert change(first) < 0.8 * change(plain)
    with pytest.raises(SigngenError, match="render setting deflicker"):
        RenderSettings(deflicker=-2.0)


def test_kept_background_counts_as_covered_only_when_asked():
    import torch

    from signgen.pipelines.signer import DrivingGeometry, coarse_images
    from signgen.poses.warp import CoarseImage

    uncovered = np.zeros((6, 5), bool)
    uncovered[1:4, 1:4] = True
    background = np.zeros_like(uncovered)
    background[1, 1:4] = True

    def warper(xy, confidence):
        return CoarseImage(np.zeros((6, 5, 3), np.uint8), uncovered.copy(), background.copy())

    def part_warper(xy, confidence):  # a warp that does not tell its background
        return CoarseImage(np.zeros((6, 5, 3), np.uint8), uncovered.copy())

    still = np.zeros((2, 178, 2))
    geometry = DrivingGeometry(still, np.zeros((2, 178)), (5, 6), still, (6, 5))
    _, as_drawn = coarse_images(warper, geometry)
    _, kept = coarse_images(warper, geometry, keep_background=True)
    _, told_nothing = coarse_images(part_warper, geometry, keep_background=True)
    assert torch.equal(as_drawn[:, 0].bool(), torch.from_numpy(uncovered).expand(2, 6, 5))
    assert torch.equal(kept[:, 0].bool(), torch.from_numpy(uncovered & ~background).expand(2, 6, 5))
    assert torch.equal(told_nothing, as_drawn)


def test_hands_left_to_the_model_are_never_kept_as_background():
    from signgen.pipelines.signer import hands_uncovered
    from signgen.poses import skeleton
    from signgen.poses.warp import CoarseImage

    xy, confidence = np.zeros((178, 2)), np.zeros(178)
    xy[:2], confidence[:2] = [(20.0, 20.0), (60.0, 20.0)], 1.0  # shoulders 40 px apart
    hand = np.arange(skeleton.RIGHT_HAND.start, skeleton.RIGHT_HAND.stop)
    xy[hand], confidence[hand] = (50.0, 50.0) + np.random.default_rng(0).uniform(-5, 5, (21, 2)), 1.0

    def warp(target_xy, target_confidence):
        return CoarseImage(np.zeros((80, 80, 3), np.uint8), np.zeros((80, 80), bool), np.ones((80, 80), bool))

    coarse = hands_uncovered(warp, xy, confidence)
    assert coarse.uncovered[50, 50] and not coarse.background[50, 50]  # the hand: the model's to draw
    assert coarse.background[10, 70] and not coarse.uncovered[10, 70]

"""The PHOENIX-2014T loader and its samplers, on the hand-written PHOENIX fixture (real CSV
rows, stand-in frames) and on a SynthSign corpus."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from signgen.corpora.phoenix import PhoenixCorpus
from signgen.corpora.samplers import clip_dataset, frame_pair_dataset, gloss_pose_pairs
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.holistic import pose_from_arrays
from signgen.poses.io import write_pose
from signgen.poses.raster import rasterize_pose_map

FRAME_SIZE = (210, 260)
TRAIN_VIDEOS = ["11August_2010_Wednesday_tagesschau-1", "11August_2010_Wednesday_tagesschau-4"]
FIXTURE_FRAMES = 3
SQUARE_LEFT = (40, 70, 100)  # x of the white square in frames 1, 2, 3 (make_fixture.py)


@pytest.fixture
def phoenix(tmp_path, phoenix_fixture) -> Path:
    """A writable copy of the PHOENIX fixture."""
    root = tmp_path / "PHOENIX-2014-T"
    shutil.copytree(phoenix_fixture, root, ignore=shutil.ignore_patterns("*.py"))
    return root


def still_pose(frames: int, seed: int = 0):
    """A 178-point pose of ``frames`` frames in PHOENIX's pixel frame, every point present."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform([20, 20], [190, 240], size=(frames, skeleton.NUM_POINTS, 2)).astype(np.float32)
    return pose_from_arrays(xy, np.ones(xy.shape[:2], np.float32), 25, *FRAME_SIZE)


def add_poses(root: Path, split: str) -> None:
    for sample in PhoenixCorpus(root).split(split):
        path = root / "holistic" / split / f"{sample.name}.pose"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_pose(still_pose(sample.num_frames), path)


def white_square_left(frame: np.ndarray) -> int:
    return int(np.nonzero((frame == 255).all(axis=-1).any(axis=0))[0][0])


def test_reads_the_phoenix_fixture(phoenix_fixture):
    corpus = PhoenixCorpus(phoenix_fixture)
    assert corpus.splits == ["train", "dev", "test"]
    assert [s.name for s in corpus.split("train")] == TRAIN_VIDEOS
    (test,) = corpus.split("test")
    assert test.name == "25October_2010_Monday_tagesschau-17" and test.signer == "Signer01"
    assert test.glosses == "REGEN SCHNEE REGION VERSCHWINDEN NORD REGEN KOENNEN REGION STERN KOENNEN SEHEN".split()
    assert test.text.startswith("regen und schnee lassen an den alpen in der nacht nach")
    dev = corpus.split("dev")
    assert [s.signer for s in dev] == ["Signer08", "Signer03"]
    assert dev[0].glosses == ["DRUCK", "TIEF", "KOMMEN"] and "nächsten" in dev[0].text
    frames = test.frames()
    assert frames.shape == (FIXTURE_FRAMES, 260, 210, 3) and frames.dtype == np.uint8
    assert test.num_frames == FIXTURE_FRAMES
    assert [white_square_left(f) for f in frames] == list(SQUARE_LEFT)
    np.testing.assert_array_equal(test.frame(1), frames[1])
    assert corpus.skipped == {"train": [], "dev": [], "test": []}


def test_a_missing_csv_or_corpus_is_a_clear_error(phoenix, tmp_path):
    (phoenix / "annotations" / "manual" / "PHOENIX-2014-T.train.corpus.csv").unlink()
    corpus = PhoenixCorpus(phoenix)
    with pytest.raises(SigngenError, match=r"PHOENIX-2014-T\.train\.corpus\.csv.*splits found: dev, test"):
        corpus.split("train")
    with pytest.raises(SigngenError, match="test_unseen"):
        corpus.split("test_unseen")
    with pytest.raises(SigngenError, match="corpus folder not found"):
        PhoenixCorpus(tmp_path / "nowhere")


def test_a_csv_with_a_bad_header_or_row_is_a_clear_error(phoenix):
    csv_path = phoenix / "annotations" / "manual" / "PHOENIX-2014-T.dev.corpus.csv"
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    csv_path.write_text("\n".join(lines + ["only|three|fields"]) + "\n", encoding="utf-8")
    with pytest.raises(SigngenError, match=r"line 4: expected 7 fields"):
        PhoenixCorpus(phoenix).split("dev")
    csv_path.write_text("\n".join([lines[0].replace("|", ",")] + lines[1:]) + "\n", encoding="utf-8")
    with pytest.raises(SigngenError, match="expected the header name\\|video"):
        PhoenixCorpus(phoenix).split("dev")


def test_a_row_without_frames_is_skipped_with_a_warning_and_counted(phoenix, caplog):
    shutil.rmtree(phoenix / "features" / "fullFrame-210x260px" / "train" / TRAIN_VIDEOS[0])
    corpus = PhoenixCorpus(phoenix)
    with caplog.at_level(logging.WARNING, logger="signgen.corpora.phoenix"):
        samples = corpus.split("train")
    assert [s.name for s in samples] == TRAIN_VIDEOS[1:]
    assert corpus.skipped["train"] == TRAIN_VIDEOS[:1]
    assert "skipped 1 of 2 videos" in caplog.text and TRAIN_VIDEOS[0] in caplog.text


def test_a_truncated_png_is_an_error_naming_the_video_and_frame(phoenix):
    add_poses(phoenix, "dev")
    name = "26January_2010_Tuesday_heute-107"
    frame = phoenix / "features" / "fullFrame-210x260px" / "dev" / name / "images0002.png"
    frame.write_bytes(frame.read_bytes()[:60])
    sample = PhoenixCorpus(phoenix).split("dev")[1]
    with pytest.raises(SigngenError, match=rf"cannot read frame of video {name} .*images0002\.png"):
        sample.frames()
    dataset = frame_pair_dataset(phoenix, "dev", resolution=(32, 26))
    with pytest.raises(SigngenError, match=name):
        dataset[FIXTURE_FRAMES + 1]  # the second video's second frame as target


def test_a_pose_whose_frame_count_differs_from_its_video_is_an_error_naming_the_video(phoenix):
    name = TRAIN_VIDEOS[1]
    path = phoenix / "holistic" / "train" / f"{name}.pose"
    path.parent.mkdir(parents=True)
    write_pose(still_pose(FIXTURE_FRAMES + 2), path)
    sample = PhoenixCorpus(phoenix).split("train")[1]
    with pytest.raises(SigngenError, match=rf"video {name}: its pose has 5 frames but the video has 3"):
        sample.pose()


def test_a_missing_pose_is_extracted_once_and_cached(phoenix, tmp_path, monkeypatch, phoenix_fixture):
    import signgen.poses.extract

    calls = []

    def fake_extract(path, progress=True, fps=None):
        calls.append(Path(path))
        return still_pose(len(list(Path(path).glob("*.png"))), seed=len(calls))

    monkeypatch.setattr(signgen.poses.extract, "extract_pose", fake_extract)
    sample = PhoenixCorpus(phoenix, cache_dir=tmp_path / "cache").split("train")[0]
    assert not sample.has_pose
    first = sample.pose()
    assert calls == [phoenix / "features" / "fullFrame-210x260px" / "train" / TRAIN_VIDEOS[0]]
    # Into the cache, never into the user's corpus folder (issue 17).
    assert not (phoenix / "holistic").exists()
    assert (PhoenixCorpus(phoenix, cache_dir=tmp_path / "cache").pose_cache("train") / f"{TRAIN_VIDEOS[0]}.pose").is_file()
    again = PhoenixCorpus(phoenix, cache_dir=tmp_path / "cache").split("train")[0].pose()
    assert len(calls) == 1
    np.testing.assert_array_equal(first.body.data, again.body.data)

    # A corpus whose holistic/ cannot be written: the cache folder takes the pose.
    readonly = tmp_path / "readonly"
    shutil.copytree(phoenix_fixture, readonly, ignore=shutil.ignore_patterns("*.py"))
    (readonly / "holistic").write_text("a file where the folder would go")
    corpus = PhoenixCorpus(readonly, cache_dir=tmp_path / "cache")
    corpus.split("train")[0].pose()
    assert len(calls) == 2
    assert (corpus.cache_dir / "train" / f"{TRAIN_VIDEOS[0]}.pose").is_file()
    assert corpus.cache_dir.parent == tmp_path / "cache"


def test_extraction_runs_mediapipe_on_the_frame_folder(phoenix, tmp_path):
    """The real extractor, on the fixture's stand-in frames: nobody in them, so every point
    is missing, but the pose has one frame per video frame."""
    sample = PhoenixCorpus(phoenix).split("test")[0]
    xy, confidence, size = sample.pose_arrays()
    assert xy.shape == (FIXTURE_FRAMES, skeleton.NUM_POINTS, 2) and size == FRAME_SIZE
    assert (confidence == 0).all()


def test_frame_pairs_come_from_one_video_and_match_frames_and_poses(synthsign_corpus):
    corpus = PhoenixCorpus(synthsign_corpus)
    resolution = (64, 52)
    dataset = frame_pair_dataset(synthsign_corpus, "dev", resolution=resolution, seed=3)
    sample = corpus.split("dev")[0]
    assert len(dataset) == sample.num_frames
    xy, confidence, size = sample.pose_arrays()
    for index in (0, 7, len(dataset) - 1):
        video, target, source = dataset.locate(index)
        assert (video, target) == (0, index) and source != target
        item = dataset[index]
        assert set(item) == {"source", "target", "target_pose"}
        assert item["source"].shape == item["target"].shape == (3, *resolution)
        assert item["target_pose"].shape == (4, *resolution) and item["target"].dtype == torch.float32
        expected = cv2.resize(sample.frame(target), resolution[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(((item["target"] + 1) * 127.5).permute(1, 2, 0).numpy(), expected, atol=1e-3)
        expected = cv2.resize(sample.frame(source), resolution[::-1], interpolation=cv2.INTER_AREA)
        np.testing.assert_allclose(((item["source"] + 1) * 127.5).permute(1, 2, 0).numpy(), expected, atol=1e-3)
        np.testing.assert_array_equal(item["target_pose"].numpy(), rasterize_pose_map(xy[target], confidence[target], size, resolution))
        assert -1 <= item["target"].min() and item["target"].max() <= 1
        assert 0 <= item["target_pose"].min() and item["target_pose"].max() == 1
    # The same seed draws the same sources; another epoch draws others.
    sources = [dataset.locate(i)[2] for i in range(len(dataset))]
    assert sources == [frame_pair_dataset(synthsign_corpus, "dev", resolution=resolution, seed=3).locate(i)[2] for i in range(len(dataset))]
    dataset.set_epoch(1)
    assert sources != [dataset.locate(i)[2] for i in range(len(dataset))]


def test_hue_rotation_keeps_greys_and_turns_hues():
    from signgen.corpora.samplers import hue_rotation, recolour

    greys = torch.linspace(-1, 1, 5).view(1, 5, 1).expand(3, 5, 4)
    assert torch.allclose(recolour(greys, hue_rotation(1.3)), greys, atol=1e-6)
    red = torch.tensor([0.8, -0.6, -0.6]).view(3, 1, 1)
    turned = recolour(red, hue_rotation(2 * np.pi / 3)).flatten()  # a third of the way round: red -> green
    assert torch.allclose(turned, torch.tensor([-0.6, 0.8, -0.6]), atol=1e-5)
    assert torch.allclose(recolour(red, hue_rotation(0.0)), red)


def test_colour_augmentation_recolours_source_and_target_together(synthsign_corpus):
    from signgen.corpora.samplers import recolour

    plain = frame_pair_dataset(synthsign_corpus, "dev", resolution=(32, 26), seed=3)
    always = frame_pair_dataset(synthsign_corpus, "dev", resolution=(32, 26), seed=3, colour_augment_prob=1.0)
    changed = 0
    for index in range(0, len(plain), 9):
        original, augmented = plain[index], always[index]
        assert torch.equal(original["target_pose"], augmented["target_pose"])
        # One matrix maps both images: solve it from the target, check it on the source.
        pixels = original["target"].flatten(1)
        inside = ((augmented["target"].flatten(1).abs() < 0.99).all(0)) & (pixels.abs() < 0.99).all(0)
        matrix = torch.linalg.lstsq(pixels[:, inside].T, augmented["target"].flatten(1)[:, inside].T).solution.T
        assert torch.allclose(recolour(original["source"], matrix), augmented["source"], atol=2e-3)
        changed += not torch.allclose(original["target"], augmented["target"], atol=0.05)
        assert torch.equal(always[index]["source"], augmented["source"])  # deterministic for the seed
    assert changed >= 1
    with pytest.raises(SigngenError, match="colour_augment_prob"):
        frame_pair_dataset(synthsign_corpus, "dev", colour_augment_prob=1.5)


def test_frame_pairs_on_phoenix_never_mix_videos_and_batch(phoenix):
    add_poses(phoenix, "train")
    dataset = frame_pair_dataset(phoenix, "train", resolution=(26, 21))
    assert len(dataset) == 2 * FIXTURE_FRAMES
    for index in range(len(dataset)):
        video, target, source = dataset.locate(index)
        assert video == index // FIXTURE_FRAMES and target == index % FIXTURE_FRAMES and source != target
        item = dataset[index]
        # each fixture video has its own background colour: source and target share it
        torch.testing.assert_close(item["source"][:, 0, 0], item["target"][:, 0, 0])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True)))
    assert batch["source"].shape == (4, 3, 26, 21) and batch["target_pose"].shape == (4, 4, 26, 21)


def test_clips_are_consecutive_frames_with_their_pose_maps(synthsign_corpus):
    corpus = PhoenixCorpus(synthsign_corpus)
    lengths = [s.num_frames for s in corpus.split("train")]
    dataset = clip_dataset(synthsign_corpus, "train", num_frames=8, resolution=(32, 26))
    assert len(dataset) == sum(length // 8 for length in lengths)
    overlapping = clip_dataset(synthsign_corpus, "train", num_frames=8, resolution=(32, 26), stride=4)
    assert len(overlapping) == sum((length - 8) // 4 + 1 for length in lengths)
    item = dataset[1]
    assert item["source"].shape == (3, 32, 26)
    assert item["frames"].shape == (8, 3, 32, 26) and item["poses"].shape == (8, 4, 32, 26)
    sample = corpus.split("train")[0]
    expected = cv2.resize(sample.frame(8 + 3), (26, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(((item["frames"][3] + 1) * 127.5).permute(1, 2, 0).numpy(), expected, atol=1e-3)
    xy, confidence, size = sample.pose_arrays()
    np.testing.assert_array_equal(item["poses"].numpy(), rasterize_pose_map(xy[8:16], confidence[8:16], size, (32, 26)))
    assert len(clip_dataset(synthsign_corpus, "train", num_frames=10_000, resolution=(32, 26))) == 0


def test_gloss_pose_pairs_match_the_annotations(synthsign_corpus):
    pairs = gloss_pose_pairs(synthsign_corpus, "test_unseen", progress=False)
    (sample,) = PhoenixCorpus(synthsign_corpus).split("test_unseen")
    ((glosses, pose),) = pairs
    assert glosses == sample.glosses and 2 <= len(glosses) <= 3
    assert pose.body.data.shape == (sample.num_frames, 1, skeleton.NUM_POINTS, 2)
    assert pose.body.fps == 25


def test_sampler_arguments_are_checked(synthsign_corpus):
    with pytest.raises(SigngenError, match="4 channels"):
        frame_pair_dataset(synthsign_corpus, "train", pose_channels=3)
    with pytest.raises(SigngenError, match="resolution"):
        clip_dataset(synthsign_corpus, "train", resolution=(0, 16))
    with pytest.raises(SigngenError, match="num_frames"):
        clip_dataset(synthsign_corpus, "train", num_frames=0)

"""SynthSign: the layout it writes, determinism, resuming, the CLI, and that the cartoon
signer is drawn where its pose says."""

from __future__ import annotations

import dataclasses
import functools
import shutil
from pathlib import Path

import numpy as np
import pytest

from signgen.corpora.cartoon import CartoonRenderer
from signgen.corpora.identity import PATTERNS, Identity
from signgen.corpora.phoenix import PhoenixCorpus
from signgen.errors import SigngenError
from signgen.poses import skeleton
from signgen.poses.io import read_pose
from signgen.corpora.synthsign import (SPLITS, SynthSignSettings, gloss_alphabet, plan_identities, plan_videos, read_identities,
                               split_sizes, write_synthsign)

# Flat colours no identity uses: every pixel of exactly this colour belongs to that hand.
LEFT_HAND_COLOR, RIGHT_HAND_COLOR = (255, 0, 255), (0, 255, 255)
FRAME_WIDTH, FRAME_HEIGHT = 210, 260


def corpus_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_writes_the_phoenix_layout_with_unseen_signers_apart(synthsign_corpus):
    manual = synthsign_corpus / "annotations" / "manual"
    assert sorted(p.name for p in manual.iterdir()) == sorted(f"PHOENIX-2014-T.{s}.corpus.csv" for s in SPLITS)
    first = (manual / "PHOENIX-2014-T.train.corpus.csv").read_text(encoding="utf-8").splitlines()
    assert first[0] == "name|video|start|end|speaker|orth|translation"
    name, video, start, end, speaker, orth, text = first[1].split("|")
    assert (video, start, end) == (f"{name}/1/*.png", "-1", "-1")
    assert 2 <= len(orth.split()) <= 3 and text == "".join(orth.split()).lower()

    corpus = PhoenixCorpus(synthsign_corpus)
    assert corpus.splits == list(SPLITS)
    signers = {split: {s.signer for s in corpus.split(split)} for split in SPLITS}
    seen = signers["train"] | signers["dev"] | signers["test"]
    assert seen <= {"Signer01", "Signer02"} and signers["test_unseen"] == {"Signer03"}
    for split in SPLITS:
        for sample in corpus.split(split):
            frames = sample.frames()
            pose = read_pose(synthsign_corpus / "holistic" / split / f"{sample.name}.pose")
            assert frames.shape == (sample.num_frames, FRAME_HEIGHT, FRAME_WIDTH, 3)
            assert frames.shape[0] == pose.body.data.shape[0] > 10
            assert pose.body.data.shape[2] == skeleton.NUM_POINTS and pose.body.fps == 25
            assert (pose.header.dimensions.width, pose.header.dimensions.height) == (FRAME_WIDTH, FRAME_HEIGHT)
            assert sorted(p.name for p in sample.frame_folder.iterdir())[0] == "images0001.png"
            # motion: the frames change along the video
            assert np.abs(frames[0].astype(int) - frames[-1]).max() > 50


def test_split_sizes_take_a_tenth_each_for_evaluation():
    assert split_sizes(200) == {"train": 140, "dev": 20, "test": 20, "test_unseen": 20}
    assert split_sizes(4) == {"train": 1, "dev": 1, "test": 1, "test_unseen": 1}
    with pytest.raises(SigngenError, match="at least 4"):
        SynthSignSettings(videos=3)
    with pytest.raises(SigngenError, match="--signers"):
        SynthSignSettings(signers=0)


def test_same_seed_writes_byte_identical_files_and_another_seed_does_not(synthsign_corpus, tmp_path, small_synthsign_settings):
    again = tmp_path / "again"
    write_synthsign(again, small_synthsign_settings, progress=False)
    assert corpus_files(again) == corpus_files(synthsign_corpus)
    other = dataclasses.replace(small_synthsign_settings, seed=1)
    alphabet = gloss_alphabet()
    assert plan_identities(other) != plan_identities(small_synthsign_settings)
    assert [v.glosses for v in plan_videos(other, alphabet)] != [v.glosses for v in plan_videos(small_synthsign_settings, alphabet)]


def test_resumes_an_interrupted_run_and_refuses_other_folders(synthsign_corpus, tmp_path, small_synthsign_settings):
    root = tmp_path / "corpus"
    shutil.copytree(synthsign_corpus, root)
    # As a crash leaves it: one video never renamed into place, its half-written folder beside.
    frames_dir = root / "features" / "fullFrame-210x260px" / "dev"
    (name,) = [p.name for p in frames_dir.iterdir()]
    shutil.rmtree(frames_dir / name)
    (frames_dir / f".{name}.partial").mkdir()
    (frames_dir / f".{name}.partial" / "images0001.png").write_bytes(b"half")
    summary = write_synthsign(root, small_synthsign_settings, progress=False)
    assert (summary.written, summary.kept) == (1, 3)
    assert corpus_files(root) == corpus_files(synthsign_corpus)

    with pytest.raises(SigngenError, match=r"other settings \(seed\)"):
        write_synthsign(root, dataclasses.replace(small_synthsign_settings, seed=5), progress=False)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(SigngenError, match="not empty"):
        write_synthsign(stranger, small_synthsign_settings, progress=False)
    assert sorted(p.name for p in stranger.iterdir()) == ["notes.txt"]


def test_cli_resumes_and_reports_user_errors(synthsign_corpus, tmp_path, monkeypatch, capsys, small_synthsign_settings):
    import signgen.corpora.synthsign
    from signgen.cli.main import main

    # The CLI's sentences are 3 to 8 letters; the shared corpus's are 2 to 3 (faster).
    monkeypatch.setattr(signgen.corpora.synthsign, "SynthSignSettings",
                        functools.partial(SynthSignSettings, min_glosses=small_synthsign_settings.min_glosses, max_glosses=small_synthsign_settings.max_glosses))
    root = tmp_path / "corpus"
    shutil.copytree(synthsign_corpus, root)
    shutil.rmtree(next((root / "features" / "fullFrame-210x260px" / "test").iterdir()))
    args = ["data", "synth", "--out", str(root), "--signers", "2", "--videos", "4", "--seed", "0", "--unseen-signers", "1"]
    assert main(args) == 0
    assert "1 videos" in capsys.readouterr().out
    assert corpus_files(root) == corpus_files(synthsign_corpus)

    assert main(args[:-2] + ["--unseen-signers", "0"]) == 2
    assert "--unseen-signers must be from 1 to 1000, got 0" in capsys.readouterr().err
    assert main(["data", "synth", "--out", str(root), "--signers", "3", "--videos", "4"]) == 2
    assert "other settings (signers" in capsys.readouterr().err


def hand_centroid_errors(frames: np.ndarray, xy: np.ndarray, confidence: np.ndarray):
    """Per frame and hand drawn wholly inside the frame: distance between the centroid of
    the hand's pixels and the centroid of its keypoints, and the same for the centres of
    their bounding boxes minus nothing (both grow by the same stroke on every side)."""
    results = []
    for hand, color in ((skeleton.LEFT_HAND, LEFT_HAND_COLOR), (skeleton.RIGHT_HAND, RIGHT_HAND_COLOR)):
        for t in range(len(frames)):
            points = xy[t, hand][confidence[t, hand] > 0]
            if len(points) < 21 or not ((points >= 8).all() and (points < [FRAME_WIDTH - 8, FRAME_HEIGHT - 8]).all()):
                continue
            rows, cols = np.nonzero((frames[t] == color).all(axis=-1))
            assert len(rows) > 50, f"hand {hand} not drawn in frame {t}"
            pixels = np.stack([cols, rows], axis=1) + 0.5  # pixel centres
            centroid = np.linalg.norm(pixels.mean(axis=0) - points.mean(axis=0))
            box_center = np.linalg.norm((pixels.min(axis=0) + pixels.max(axis=0)) / 2 - (points.min(axis=0) + points.max(axis=0)) / 2)
            results.append((hand.start, t, centroid, box_center))
    return results


def test_hands_are_drawn_where_the_pose_says_on_every_frame(synthsign_corpus):
    identities = read_identities(synthsign_corpus)
    corpus = PhoenixCorpus(synthsign_corpus)
    sample = corpus.split("train")[0]
    xy, confidence, size = sample.pose_arrays()
    assert size == (FRAME_WIDTH, FRAME_HEIGHT)
    renderer = CartoonRenderer(identities[sample.signer], size)
    # The frames on disk are exactly the renders of the pose on disk ...
    plain = renderer.render(xy, confidence)
    np.testing.assert_array_equal(plain, sample.frames())
    assert not (plain == LEFT_HAND_COLOR).all(axis=-1).any() and not (plain == RIGHT_HAND_COLOR).all(axis=-1).any()
    # ... so the same render with flat hand colours shows where the hands are. The left hand
    # of the fingerspelling clips is never seen; a mirrored right hand stands in for it.
    xy, confidence = xy.copy(), confidence.copy()
    xy[:, skeleton.LEFT_HAND] = xy[:, skeleton.RIGHT_HAND] * [-1, 1] + [FRAME_WIDTH, 0]
    confidence[:, skeleton.LEFT_HAND] = confidence[:, skeleton.RIGHT_HAND]
    frames = renderer.render(xy, confidence, hand_colors=(LEFT_HAND_COLOR, RIGHT_HAND_COLOR))
    errors = hand_centroid_errors(frames, xy, confidence)
    checked = {hand for hand, *_ in errors}
    assert checked == {skeleton.LEFT_HAND.start, skeleton.RIGHT_HAND.start}
    assert len(errors) >= 1.6 * len(frames)  # nearly every frame, both hands
    centroid = np.array([e[2] for e in errors])
    box_center = np.array([e[3] for e in errors])
    # Hands span about 35 px; palm and fingers weigh the pixels differently from the 21
    # points, which puts the centroids up to about 7 px apart. The bounding boxes agree
    # to a pixel: every extreme pixel is a keypoint plus the stroke radius.
    assert centroid.max() < 8.0 and np.median(centroid) < 3.0, centroid.max()
    assert box_center.max() < 1.5, box_center.max()

    # The check can fail: against the pose a few frames later, it does.
    late = hand_centroid_errors(frames[:-5], xy[5:], confidence[5:])
    assert max(e[2] for e in late) > 8.0 and max(e[3] for e in late) > 1.5


def test_identities_cover_every_pattern_and_round_trip():
    identities = [Identity.sample(np.random.default_rng(seed)) for seed in range(40)]
    assert {identity.pattern for identity in identities} == set(PATTERNS)
    assert all(Identity.from_dict(i.to_dict()) == i for i in identities)
    with pytest.raises(SigngenError, match="pattern"):
        dataclasses.replace(identities[0], pattern="tartan")


def test_garment_pattern_is_drawn_and_follows_the_body(synthsign_corpus):
    corpus = PhoenixCorpus(synthsign_corpus)
    sample = corpus.split("train")[0]
    xy, confidence, size = sample.pose_arrays()
    base = Identity.sample(np.random.default_rng(0))
    solid = dataclasses.replace(base, pattern="solid")
    striped = dataclasses.replace(base, pattern="stripes")
    frame_solid = CartoonRenderer(solid, size).render(xy[:1], confidence[:1])[0]
    frame_striped = CartoonRenderer(striped, size).render(xy[:1], confidence[:1])[0]
    # Below the shoulders in the middle of the chest: only the garment is there.
    center = ((xy[0, skeleton.LEFT_SHOULDER] + xy[0, skeleton.RIGHT_SHOULDER]) / 2).round().astype(int)
    chest = (slice(center[1] + 30, center[1] + 60), slice(center[0] - 10, center[0] + 10))
    assert (frame_solid[chest] == base.garment).all()
    assert (frame_striped[chest] == base.garment_accent).all(axis=-1).any()
    # Moving the whole body moves the stripes with it.
    moved = CartoonRenderer(striped, size).render(xy[:1] + [0, 3], confidence[:1])[0]
    shifted_chest = (slice(chest[0].start + 3, chest[0].stop + 3), chest[1])
    np.testing.assert_array_equal(moved[shifted_chest], frame_striped[chest])


def test_renderer_rejects_bad_shapes_and_draws_background_only_without_a_pose():
    renderer = CartoonRenderer(Identity.sample(np.random.default_rng(0)))
    with pytest.raises(SigngenError, match="178"):
        renderer.render(np.zeros((2, 10, 2)), np.zeros((2, 10)))
    frames = renderer.render(np.zeros((2, 178, 2)), np.zeros((2, 178)))
    assert (frames == renderer.identity.background).all()

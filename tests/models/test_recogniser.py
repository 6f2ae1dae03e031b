"""The CTC recogniser: greedy decoding on hand-made scores, its inputs (pose features,
hand crops), and its folder (manifest kind, vocabulary, refusals)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from signgen.errors import SigngenError
from signgen.models.recogniser import (
    KIND,
    Recogniser,
    collate_inputs,
    ctc_greedy_decode,
    hand_centres,
    load_recogniser,
    pose_inputs,
    video_inputs,
)
from signgen.poses import skeleton

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"hidden_size": 8, "conv_layers": 1, "temporal_layers": 1, "cnn_channels": [4], "hand_size": 8,
        "frame_size": [10, 8], "frame_stride": 1, "dropout": 0.0}


def scores(labels_per_frame: list[int], classes: int = 4) -> torch.Tensor:
    """(1, T, C) log-probabilities whose best label in frame t is ``labels_per_frame[t]``."""
    logits = torch.full((1, len(labels_per_frame), classes), -5.0)
    for t, label in enumerate(labels_per_frame):
        logits[0, t, label] = 5.0
    return logits.log_softmax(-1)


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    assert ctc_greedy_decode(scores([0, 1, 1, 0, 2, 2, 2, 0, 0, 3])) == [[1, 2, 3]]
    # a blank between two equal labels keeps both: the way CTC writes a double letter
    assert ctc_greedy_decode(scores([1, 1, 0, 1, 0])) == [[1, 1]]
    assert ctc_greedy_decode(scores([0, 0, 0])) == [[]]
    # frames past a sequence's length are not read
    assert ctc_greedy_decode(scores([2, 0, 3, 3]), lengths=[2]) == [[2]]
    batch = torch.cat([scores([1, 0, 2]), scores([3, 3, 3])])
    assert ctc_greedy_decode(batch) == [[1, 2], [3]]


def random_pose(frames: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(40, 200, size=(frames, skeleton.NUM_POINTS, 2)).astype(np.float32)
    xy[:, skeleton.LEFT_SHOULDER] = [140, 120]
    xy[:, skeleton.RIGHT_SHOULDER] = [60, 120]
    confidence = np.ones((frames, skeleton.NUM_POINTS), np.float32)
    return xy, confidence


def test_pose_features_do_not_depend_on_where_and_how_large_the_signer_is():
    xy, confidence = random_pose()
    moved = xy * 1.7 + np.array([30.0, -12.0], np.float32)
    np.testing.assert_allclose(pose_inputs(xy, confidence), pose_inputs(moved, confidence), atol=1e-4)
    confidence[:, skeleton.LEFT_SHOULDER] = 0
    with pytest.raises(SigngenError, match="shoulders"):
        pose_inputs(xy, confidence)


def test_a_hand_missed_in_a_few_frames_keeps_its_crop_then_its_forearm_places_it_and_else_none():
    xy, confidence = random_pose(frames=30)
    confidence[:, skeleton.LEFT_HAND] = 0  # never seen, nor its arm
    confidence[:, [skeleton.LEFT_WRIST, 2]] = 0
    confidence[10:13, skeleton.RIGHT_HAND] = 0  # missed for 3 frames
    centres = hand_centres(xy, confidence, max_gap=8)
    assert np.isnan(centres[:, 0]).all()
    assert np.isfinite(centres[:, 1]).all()
    np.testing.assert_allclose(centres[10, 1], xy[9, skeleton.RIGHT_HAND].mean(0), rtol=1e-5)
    confidence[:, skeleton.RIGHT_HAND] = 0
    confidence[0, skeleton.RIGHT_HAND] = 1  # seen once: held for max_gap frames, not for ever ...
    confidence[20:, skeleton.RIGHT_WRIST] = 0
    centres = hand_centres(xy, confidence, max_gap=8)
    assert np.isfinite(centres[:20, 1]).all() and np.isnan(centres[20:, 1]).all()
    wrist, elbow = xy[15, skeleton.RIGHT_WRIST], xy[15, 3]  # ... then placed along the forearm
    np.testing.assert_allclose(centres[15, 1], wrist + 0.35 * (wrist - elbow), rtol=1e-5)


def test_video_inputs_crop_around_the_hand_and_refuse_an_empty_video():
    xy, confidence = random_pose(frames=2)
    frames = np.zeros((2, 260, 210, 3), np.uint8)
    xy[:, skeleton.RIGHT_HAND] = [100.0, 200.0]
    frames[:, 195:206, 95:106] = 255  # a white square where the right hand is
    hands, small = video_inputs(frames, xy, confidence, (210, 260), hand_size=16, frame_size=(20, 16), hand_box=0.5)
    assert hands.shape == (2, 2, 16, 16, 3) and small.shape == (2, 20, 16, 3)
    assert hands[0, 1, 6:10, 6:10].min() > 200 and hands[0, 1, 0, 0].max() == 0
    with pytest.raises(SigngenError, match="empty"):
        video_inputs(frames[:0], xy[:0], confidence[:0], (210, 260), 16, (20, 16), 0.5)


@pytest.mark.parametrize("reader", ["video", "pose"])
def test_a_saved_reader_loads_with_its_vocabulary_and_reads_alike(tmp_path, reader):
    torch.manual_seed(0)
    model = Recogniser(glosses=["A", "B", "Ä"], reader=reader, **TINY).eval()
    model.save_folder(tmp_path / "reader")
    manifest = json.loads((tmp_path / "reader" / "model_index.json").read_text())
    assert manifest["kind"] == KIND and manifest["reader"] == reader
    assert json.loads((tmp_path / "reader" / "vocabulary.json").read_text(encoding="utf-8")) == ["A", "B", "Ä"]
    loaded = load_recogniser(tmp_path / "reader")
    assert loaded.glosses == ["A", "B", "Ä"] and loaded.knows("ä") and not loaded.knows("C")
    xy, confidence = random_pose(frames=5)
    frames = np.random.default_rng(0).integers(0, 255, size=(5, 26, 21, 3), dtype=np.uint8)
    batch = collate_inputs([model.inputs(xy, confidence, frames, (210, 260))])
    with torch.no_grad():
        torch.testing.assert_close(model(batch), loaded(batch))
    assert loaded.read(xy, confidence, frames, (210, 260)) == model.read(xy, confidence, frames, (210, 260))


def test_a_folder_of_another_kind_is_refused_in_one_line(tmp_path):
    other = tmp_path / "pipeline"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"kind": "signgen-pipeline", "format_version": 1}))
    with pytest.raises(SigngenError, match="'signgen-pipeline' folder, not a signgen recogniser") as error:
        load_recogniser(other)
    assert "\n" not in str(error.value)
    with pytest.raises(SigngenError, match="not found"):
        load_recogniser(tmp_path / "nowhere")
    with pytest.raises(SigngenError, match="vocabulary"):
        Recogniser(glosses=["A"], reader="pose", **TINY).encode_glosses(["A", "Q"])

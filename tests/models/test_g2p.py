import dataclasses
import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from signgen.poses.dtw import dtw_mje
from signgen.errors import SigngenError
from signgen.models.g2p import GlossToPoseModel, durations_from_log, length_regulate, load_model, monotonic_alignment
from signgen.pipelines.gloss_to_pose import load_gloss_to_pose
from signgen.poses import skeleton
from signgen.poses.holistic import pose_arrays
from signgen.poses.transform import PHOENIX_FRAMING, normalize
from signgen.config import load_g2p_config
from signgen.training.g2p import Example, train_g2p

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "g2p-tiny.yaml"
GLOSS_FRAMES = {"A": 8, "B": 12, "C": 10}


def gloss_motion(gloss: str, base: np.ndarray) -> np.ndarray:
    """A gloss's own clip: the hands trace a gloss-specific loop around the rest pose."""
    frames = GLOSS_FRAMES[gloss]
    phase = np.linspace(0, 2 * np.pi, frames)[:, None]
    turns = {"A": 1.0, "B": 2.0, "C": -1.0}[gloss]
    offset = 0.4 * np.concatenate([np.sin(turns * phase), np.cos(turns * phase) - 1], axis=1)
    clip = np.repeat(base[None], frames, axis=0)
    clip[:, skeleton.LEFT_HAND] += offset[:, None]
    clip[:, skeleton.RIGHT_HAND] -= offset[:, None] * {"A": 1, "B": -1, "C": 0.5}[gloss]
    return clip


def rest_pose() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.normal(scale=0.2, size=(skeleton.NUM_POINTS, 2)).astype(np.float32)
    base[skeleton.LEFT_SHOULDER], base[skeleton.RIGHT_SHOULDER] = (0.5, 0.0), (-0.5, 0.0)
    base[skeleton.FACE] += (0.0, -0.8)
    return base


def sentence(glosses) -> Example:
    base = rest_pose()
    xy = np.concatenate([gloss_motion(g, base) for g in glosses]).astype(np.float32)
    return Example(list(glosses), xy, np.ones(xy.shape[:2], dtype=bool))


ORDERS = [order for n in (2, 3) for order in itertools.permutations("ABC", n)]
TEST_ORDERS = [("C", "A"), ("B", "C", "A")]
TRAIN = [sentence(order) for order in ORDERS if order not in TEST_ORDERS]


def tiny_config(**train):
    config = load_g2p_config(CONFIG)
    model = dataclasses.replace(config.model, hidden_size=32, ff_size=64, encoder_layers=1, decoder_layers=1, aligner_size=32)
    fields = dict(batch_size=4, warmup_steps=5, max_steps=100, checkpoint_every=1000, log_every=10, learning_rate=3e-3)
    fields.update(train)
    return dataclasses.replace(config, model=model, train=dataclasses.replace(config.train, **fields))


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny models: one thread is faster


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_torch_thread):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("g2p")
    return train_g2p(TRAIN, out, tiny_config(), progress=False), out


def test_length_regulation_repeats_each_gloss_over_its_frames():
    durations = torch.tensor([[2, 3, 1], [1, 1, 0]])
    mask = torch.tensor([[True, True, True], [True, True, False]])
    index, phase, frame_mask = length_regulate(durations, mask)
    assert index[0].tolist() == [0, 0, 1, 1, 1, 2]
    assert frame_mask.sum(1).tolist() == [6, 2]
    assert index[1, :2].tolist() == [0, 1]
    torch.testing.assert_close(phase[0, 2:5], torch.tensor([1 / 6, 3 / 6, 5 / 6]))


def test_monotonic_alignment_finds_the_best_segmentation():
    rng = np.random.default_rng(0)
    log_probs = torch.from_numpy(rng.normal(size=(1, 7, 3)).astype(np.float32))
    best = max(
        ((a, b - a, 7 - b) for a in range(1, 6) for b in range(a + 1, 7)),
        key=lambda d: sum(log_probs[0, t, g] for g, (start, n) in enumerate(zip(np.cumsum((0,) + d[:-1]), d))
                          for t in range(start, start + n)),
    )
    durations = monotonic_alignment(log_probs, torch.ones(1, 7, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool))
    assert tuple(durations[0].tolist()) == best


def test_durations_from_log_keep_at_least_one_frame_per_gloss():
    durations = durations_from_log(torch.log(torch.tensor([[0.2, 2.6, 3.7, 9.0]])), torch.tensor([[True, True, True, False]]))
    assert durations.tolist() == [[1, 3, 3, 0]]


def test_trained_tiny_model_beats_the_mean_pose_on_unseen_gloss_orders(trained):
    model, out = trained
    mean_pose = model.mean_pose.numpy()
    model_errors, mean_errors, speeds = [], [], []
    for order in TEST_ORDERS:
        reference = sentence(order).xy
        xy, _ = model.generate(order)
        model_errors.append(dtw_mje(xy, reference))
        mean_errors.append(dtw_mje(np.repeat(mean_pose[None], len(reference), 0), reference))
        hands = np.r_[skeleton.LEFT_HAND, skeleton.RIGHT_HAND]
        speeds.append(np.linalg.norm(np.diff(xy[:, hands], axis=0), axis=-1).mean()
                      / np.linalg.norm(np.diff(reference[:, hands], axis=0), axis=-1).mean())
    assert np.mean(model_errors) < 0.9 * np.mean(mean_errors)
    assert np.mean(speeds) > 0.3  # it moves: no collapse to a still pose
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(10, 101, 10))
    assert log[-1]["loss"] < log[0]["loss"]
    assert {"position", "motion", "motion_ratio", "lr", "elapsed_s"} <= log[0].keys()
    assert load_model(out).config.glosses == model.config.glosses  # OUT/model, found from OUT


def test_save_then_load_gives_identical_output(trained, tmp_path):
    model, _ = trained
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path)
    # The vocabulary travels in config.json, in the corpus's first-seen order.
    assert json.loads((tmp_path / "config.json").read_text())["glosses"] == list(model.config.glosses) == ["A", "B", "C"]
    for order in TEST_ORDERS:
        first, second = model.generate(order), loaded.generate(order)
        np.testing.assert_array_equal(first[0], second[0])
        np.testing.assert_array_equal(first[1], second[1])


def test_backend_places_the_pose_and_falls_back_to_the_lexicon_for_unknown_glosses(tmp_path, caplog):
    from signgen.poses.stitch import glosses_to_pose

    reference = pose_arrays(normalize(glosses_to_pose(["A"])))[0]
    model = GlossToPoseModel(glosses=["MORGEN", "REGEN"], hidden_size=16, num_heads=2, encoder_layers=1,
                             decoder_layers=1, ff_size=16, aligner_size=8)
    model.set_corpus_statistics(np.nanmean(reference, axis=0), np.ones((178, 2)), np.log(10.0))
    model.save_pretrained(tmp_path)
    gloss_to_pose = load_gloss_to_pose(tmp_path)

    known = gloss_to_pose(["MORGEN", "REGEN"])
    assert known.body.fps == 25
    assert (known.header.dimensions.width, known.header.dimensions.height) == (PHOENIX_FRAMING.width, PHOENIX_FRAMING.height)
    xy, _ = pose_arrays(known)
    np.testing.assert_allclose(np.median((xy[:, 0] + xy[:, 1]) / 2, axis=0), PHOENIX_FRAMING.shoulder_center, atol=1e-3)
    with caplog.at_level(logging.WARNING, logger="signgen.models.g2p"):
        mixed = gloss_to_pose(["MORGEN", "AB", "REGEN"])
    assert "AB" in caplog.text
    assert mixed.body.data.shape[0] > known.body.data.shape[0] + 20  # two fingerspelled letters and transitions


def test_unknown_gloss_in_generate_is_a_user_error(trained):
    model, _ = trained
    with pytest.raises(SigngenError, match="ZZZ"):
        model.generate(["A", "ZZZ"])


def test_cli_reports_a_missing_corpus_or_config_in_one_line(tmp_path, capsys):
    from signgen.cli.main import main

    assert main(["train", "g2p", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: g2p-tiny.yaml\nmodel: {hidden_sise: 8}\n")
    (tmp_path / "g2p-tiny.yaml").write_text(CONFIG.read_text().replace("base: g2p-phoenix.yaml", f"base: {CONFIG.parent / 'g2p-phoenix.yaml'}"))
    assert main(["train", "g2p", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--config", str(bad)]) == 2
    assert "hidden_sise" in capsys.readouterr().err

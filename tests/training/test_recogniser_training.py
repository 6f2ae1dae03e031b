"""``signgen train recogniser`` through the one driver: a tiny reader's CTC loss falls on a
tiny corpus, a resumed run equals an uninterrupted one, the command writes a model
folder, and the augmentation shows still items with no glosses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from signgen.config import load_config
from signgen.corpora.recognition import PreparedVideo
from signgen.models.recogniser import load_recogniser
from signgen.poses import skeleton
from signgen.training.recogniser import augmenter, build_model, train_recogniser

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["model.reader=pose", "model.hidden_size=16", "model.conv_layers=1", "model.temporal_layers=1", "model.dropout=0.0",
        "train.eval_split=none", "train.warmup_steps=0", "train.log_every=1", "train.batch_size=4",
        "train.learning_rate=0.01", "train.still_prob=0.0"]
LETTERS = ["A", "B", "C"]


def letter_videos(count: int = 8, seed: int = 0) -> list[PreparedVideo]:
    """Normalised poses in which each letter moves the right hand to its own place for 6
    frames, with 3 frames at rest between letters."""
    rng = np.random.default_rng(seed)
    places = {"A": (-1.0, 0.5), "B": (0.0, -1.0), "C": (1.0, 0.5)}
    videos = []
    for index in range(count):
        glosses = list(rng.choice(LETTERS, size=rng.integers(2, 4)))
        frames = []
        for gloss in glosses:
            frames += [(0.0, 1.5)] * 3 + [places[gloss]] * 6
        frames += [(0.0, 1.5)] * 3
        normal = np.zeros((len(frames), skeleton.NUM_POINTS, 2), np.float32)
        normal[:, skeleton.LEFT_SHOULDER] = [0.5, 0.0]
        normal[:, skeleton.RIGHT_SHOULDER] = [-0.5, 0.0]
        normal[:, skeleton.RIGHT_HAND] = np.asarray(frames, np.float32)[:, None]
        present = np.zeros(normal.shape[:2], bool)
        present[:, skeleton.BODY] = present[:, skeleton.RIGHT_HAND] = True
        videos.append(PreparedVideo(f"v{index}", glosses, {"normal": normal, "present": present}))
    return videos


def train(out, steps: int, resume=False, extra=()):
    config = load_config("recogniser", None, TINY + [f"train.max_steps={steps}", *extra])
    return train_recogniser(None, out, config, resume=resume, progress=False, train_videos=letter_videos(), eval_videos=[])


def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "log.jsonl").read_text().splitlines() if "loss" in json.loads(line)]


def test_a_tiny_pose_reader_learns_to_read_a_tiny_corpus(tmp_path):
    train(tmp_path / "run", 60)
    values = losses(tmp_path / "run")
    assert np.mean(values[-5:]) < 0.5 * np.mean(values[:5])
    loaded = load_recogniser(tmp_path / "run")  # the run folder works as well as run/model
    assert loaded.glosses == LETTERS and loaded.config.reader == "pose"


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, interrupted_after_step):
    # 8 videos in batches of 4: interrupted after step 3, in the middle of epoch 1, with
    # augmentation (still items included) drawn per epoch.
    every = ["train.checkpoint_every=3", "train.still_prob=0.3"]
    train(tmp_path / "straight", 6, extra=every)
    with interrupted_after_step(3):
        train(tmp_path / "resumed", 6, extra=every)
    train(tmp_path / "resumed", 6, resume=True, extra=every)
    assert len(losses(tmp_path / "straight")) == 6
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")
    straight = load_file(tmp_path / "straight" / "model" / "diffusion_pytorch_model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model" / "diffusion_pytorch_model.safetensors")
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[key], resumed[key]) for key in straight)


def test_still_items_have_no_glosses_and_augmentation_depends_on_the_draw_only():
    config = load_config("recogniser", None, TINY + ["train.still_prob=1.0"])
    video = letter_videos(1)[0]
    model = build_model(config, LETTERS)
    inputs, labels = augmenter(config, model, train=True)(video.arrays, video.glosses, np.random.default_rng(0))
    assert labels == [] and inputs["pose"].shape[1] > 0
    config = load_config("recogniser", None, TINY)
    augment = augmenter(config, model, train=True)
    first = augment(video.arrays, video.glosses, np.random.default_rng([0, 1, 2]))
    again = augment(video.arrays, video.glosses, np.random.default_rng([0, 1, 2]))
    torch.testing.assert_close(first[0]["pose"], again[0]["pose"])
    assert first[1] == model.encode_glosses(video.glosses)


def test_the_command_trains_a_video_reader_on_synthsign_preparing_videos_per_read(synthsign_corpus, tmp_path, run_cli):
    code, out, err = run_cli("train", "recogniser", "--data", synthsign_corpus, "--out", tmp_path / "run",
                             "--set", "train.max_steps=2", "--set", "train.batch_size=1", "--set", "model.hidden_size=8",
                             "--set", "model.cnn_channels=[4]", "--set", "train.eval_every=2",
                             "--set", "train.eval_split=train", "--set", "train.in_memory=false")
    assert code == 0, err
    assert "wrote the video recogniser" in out
    model = load_recogniser(tmp_path / "run" / "model")
    assert model.config.reader == "video" and set(model.glosses) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÜß")
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("eval_wer" in record for record in records)


def test_bad_configs_are_one_line_errors(synthsign_corpus, tmp_path, run_cli, cli_error_line):
    for setting, words in (("model.reader=audio", "reader must be 'video' or 'pose'"),
                           ("train.still_prob=nan", "still_prob"), ("model.hand_box=-1", "hand_box"),
                           ("train.speed=inf", "speed")):
        code, _, err = run_cli("train", "recogniser", "--data", synthsign_corpus, "--out", tmp_path / "run", "--set", setting)
        assert code == 2 and words in cli_error_line(err)
        assert not (tmp_path / "run").exists()


def test_a_video_reader_distils_from_a_pose_reader_of_the_same_glosses(synthsign_corpus, tmp_path, run_cli, cli_error_line):
    small = ["--set", "train.max_steps=2", "--set", "train.batch_size=1", "--set", "model.hidden_size=8",
             "--set", "model.cnn_channels=[4]", "--set", "train.eval_split=none", "--set", "train.log_every=1"]
    code, _, err = run_cli("train", "recogniser", "--data", synthsign_corpus, "--out", tmp_path / "pose", *small,
                           "--set", "model.reader=pose")
    assert code == 0, err
    code, _, err = run_cli("train", "recogniser", "--data", synthsign_corpus, "--out", tmp_path / "video", *small,
                           "--set", f"train.teacher={tmp_path / 'pose' / 'model'}")
    assert code == 0, err
    records = [json.loads(line) for line in (tmp_path / "video" / "log.jsonl").read_text().splitlines()]
    assert all("distillation" in record and "ctc" in record for record in records if "loss" in record)
    code, _, err = run_cli("train", "recogniser", "--data", synthsign_corpus, "--out", tmp_path / "again", *small,
                           "--set", f"train.teacher={tmp_path / 'video' / 'model'}")
    assert code == 2 and "a teacher reads poses" in cli_error_line(err)
    assert not (tmp_path / "again").exists()

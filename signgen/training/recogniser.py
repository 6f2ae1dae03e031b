"""``signgen train recogniser``: a CTC gloss reader (``signgen.models.recogniser``) on a
corpus in the PHOENIX-2014T layout, through the one training driver.

Every video is prepared once (hand crops and a small frame for the video reader, the
shoulder-normalised pose for the pose reader; every ``frame_stride``-th frame) and then
augmented afresh per epoch, lightly, so that the reader learns the signing rather than the
training signers:

- playback speed in [1/speed, speed] (frames repeated or skipped);
- video: the hand crops and the frame shifted, zoomed and turned a little (the hands also
  per frame, as a re-extracted pose jitters), brightness, contrast and channel gains, and
  a random hue rotation for a share of the items (signers differ in colours);
- pose: each hand scaled around its wrist, the whole pose scaled, turned and shifted,
  per-point noise, and hands dropped in some frames (as MediaPipe misses them);
- a share of the items (``still_prob``) shows one of its frames held still, with no
  glosses as the target: a still picture is no signing, so copying the signer photo must
  read as nothing rather than as the most frequent sentence.

The loss is CTC (blank 0), per item divided by its number of glosses. Every
``eval_every`` steps the greedy-decoded word error rate on ``eval_split`` is logged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from signgen.config import RecogniserConfig, RecogniserTrainConfig, config_to_dict
from signgen.corpora.recognition import LazyVideo, PreparedVideo, RecognitionDataset, prepare_videos, recognition_samples
from signgen.errors import SigngenError
from signgen.models.recogniser import (
    HANDS,
    Recogniser,
    collate_inputs,
    ctc_greedy_decode,
    gloss_key,
    normalised_pose,
    pose_features,
    uint8_to_model,
    video_inputs,
)
from signgen.training import driver

logger = logging.getLogger(__name__)

LUMA = torch.tensor([0.299, 0.587, 0.114])


# ---- preparation ------------------------------------------------------------------


def preparer(model: Recogniser, teacher: Recogniser | None = None):
    """The function that turns one corpus video into the arrays stored for training (with a
    ``teacher``, also its per-frame posteriors on the video's pose, at the reader's frames)."""
    stride = model.config.frame_stride

    def prepare(sample) -> dict[str, np.ndarray]:
        xy, confidence, pose_size = sample.pose_arrays()
        extra = {} if teacher is None else {"teacher": teacher_posteriors(teacher, xy, confidence, stride)}
        xy, confidence = np.asarray(xy)[::stride], np.asarray(confidence)[::stride]
        if model.config.reader == "pose":
            normal, present = normalised_pose(xy, confidence)
            return {"normal": normal, "present": present, **extra}
        frames = np.stack([sample.frame(i) for i in range(0, sample.num_frames, stride)])
        hands, small = video_inputs(frames, xy, confidence, pose_size, model.config.hand_size, model.config.frame_size,
                                    model.config.hand_box)
        return {"hands": hands, "frame": small, **extra}

    return prepare


@torch.no_grad()
def teacher_posteriors(teacher: Recogniser, xy: np.ndarray, confidence: np.ndarray, stride: int) -> np.ndarray:
    """The teacher's label probabilities (T', V + 1) at every ``stride``-th frame (the
    nearest of the frames it reads itself)."""
    batch = collate_inputs([teacher.inputs(np.asarray(xy), np.asarray(confidence))])
    probabilities = teacher.eval()(batch)[0].exp().numpy()
    frames = np.arange(0, len(xy), stride)
    index = np.minimum(np.round(frames / teacher.config.frame_stride).astype(int), len(probabilities) - 1)
    return probabilities[index].astype(np.float32)


def vocabulary_of(videos: Sequence[PreparedVideo]) -> list[str]:
    """The training glosses, sorted, each once (case-insensitively)."""
    seen: dict[str, str] = {}
    for video in videos:
        for gloss in video.glosses:
            seen.setdefault(gloss_key(gloss), gloss)
    return [seen[key] for key in sorted(seen)]


# ---- augmentation -----------------------------------------------------------------


def _time_index(length: int, labels: int, rng: np.random.Generator, speed: float) -> np.ndarray:
    factor = math.exp(rng.uniform(-math.log(speed), math.log(speed))) if speed > 1 else 1.0
    frames = max(int(round(length / factor)), min(length, 2 * labels + 1), 1)
    return np.minimum(np.round(np.arange(frames) * (length / frames)).astype(int), length - 1)


def _affine(count: int, rng: np.random.Generator, shift: float, scale: float, degrees: float,
            jitter: float = 0.0) -> torch.Tensor:
    """(count, 2, 3) sampling grids' matrices: one draw for all, plus per-item jitter."""
    zoom = 1.0 + rng.uniform(-scale, scale)
    angle = math.radians(rng.uniform(-degrees, degrees))
    offset = rng.uniform(-shift, shift, size=2) * 2  # grid units span 2
    offsets = offset + (rng.normal(0.0, jitter, size=(count, 2)) * 2 if jitter else 0.0)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) / zoom
    matrices = np.zeros((count, 2, 3), dtype=np.float32)
    matrices[:, :, :2] = rotation
    matrices[:, :, 2] = offsets
    return torch.from_numpy(matrices)


def _warp(images: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(matrices, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _colour_change(rng: np.random.Generator, settings: RecogniserTrainConfig):
    """One colour change drawn for a whole item (hands and frame alike): a function of
    images (..., 3, H, W) in [-1, 1]."""
    from signgen.corpora.samplers import hue_rotation

    hue = hue_rotation(rng.uniform(-math.pi, math.pi)) if rng.random() < settings.hue_prob else None
    c = settings.colour
    gains = torch.from_numpy(1.0 + rng.uniform(-c / 3, c / 3, size=3).astype(np.float32))
    contrast, brightness = 1.0 + rng.uniform(-c, c), rng.uniform(-c, c)

    def change(images: torch.Tensor) -> torch.Tensor:
        if hue is not None:
            images = torch.einsum("ij,...jhw->...ihw", hue, images)
        mean = (images * LUMA[:, None, None]).sum(-3, keepdim=True).mean((-2, -1), keepdim=True)
        images = (images - mean) * contrast + mean + brightness
        return (images * gains[:, None, None]).clamp(-1.0, 1.0)

    return change


def augmenter(config: RecogniserConfig, model: Recogniser, train: bool):
    """``augment(arrays, glosses, rng)`` -> (model inputs, label ids) of one item; with
    ``train=False`` the item as it is (evaluation)."""
    settings, reader = config.train, model.config.reader

    def augment(arrays: dict[str, np.ndarray], glosses: list[str], rng: np.random.Generator):
        labels = model.encode_glosses(glosses)
        length = len(next(iter(arrays.values())))
        if not train:
            index = np.arange(length)
        elif rng.random() < settings.still_prob:
            labels = []
            index = np.full(max(int(round(length * rng.uniform(0.5, 1.0))), 1), rng.integers(length))
        else:
            index = _time_index(length, len(labels), rng, settings.speed)
        extra = {}
        if "teacher" in arrays:
            teacher = arrays["teacher"][index].copy()
            if not labels:  # a still item: nothing is signed, the teacher's answer is blank throughout
                teacher[:] = 0.0
                teacher[:, 0] = 1.0
            extra["teacher"] = torch.from_numpy(teacher)
        if reader == "pose":
            normal, present = arrays["normal"][index].copy(), arrays["present"][index].copy()
            if train:
                normal, present = _augment_pose(normal, present, rng, settings)
            return {"pose": torch.from_numpy(pose_features(normal, present)), **extra}, labels
        hands = uint8_to_model(torch.from_numpy(arrays["hands"][index]))  # (T, 2, 3, S, S)
        frame = uint8_to_model(torch.from_numpy(arrays["frame"][index]))  # (T, 3, h, w)
        if train:
            frames = len(index)
            hands = hands.flatten(0, 1)
            hands = _warp(hands, _affine(len(hands), rng, settings.shift, settings.scale, settings.rotation_degrees,
                                         jitter=settings.shift / 3)).unflatten(0, (frames, 2))
            frame = _warp(frame, _affine(1, rng, settings.shift / 2, settings.scale / 2, settings.rotation_degrees / 2).expand(frames, 2, 3))
            change = _colour_change(rng, settings)
            hands, frame = change(hands), change(frame)
        return {"hands": hands, "frame": frame, **extra}, labels

    return augment


def _augment_pose(normal: np.ndarray, present: np.ndarray, rng: np.random.Generator,
                  settings: RecogniserTrainConfig) -> tuple[np.ndarray, np.ndarray]:
    for hand in HANDS:
        wrist = normal[:, hand][:, :1]
        normal[:, hand] = wrist + (normal[:, hand] - wrist) * (1.0 + rng.uniform(-settings.scale * 1.5, settings.scale * 1.5))
    angle = math.radians(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees))
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=np.float32)
    normal = normal @ rotation.T * (1.0 + rng.uniform(-settings.scale, settings.scale))
    normal = normal + rng.uniform(-settings.shift, settings.shift, size=2).astype(np.float32)
    normal = normal + rng.normal(0.0, settings.pose_noise, size=normal.shape).astype(np.float32)
    if settings.hand_drop_prob > 0:
        for hand in HANDS:
            dropped = rng.random(len(normal)) < settings.hand_drop_prob
            present[dropped, hand] = False
    return np.where(present[..., None], normal, 0.0).astype(np.float32), present


def collate(items) -> dict[str, torch.Tensor]:
    inputs, labels = zip(*items)
    batch = collate_inputs(inputs)
    batch["targets"] = torch.tensor([label for item in labels for label in item], dtype=torch.long)
    batch["target_lengths"] = torch.tensor([len(item) for item in labels], dtype=torch.long)
    return batch


# ---- loss -------------------------------------------------------------------------


def ctc_loss(log_probs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """CTC of (B, T, C) log-probabilities, per item divided by its number of glosses (at
    least 1: a still item's target is empty), mean over the batch."""
    lengths = batch["mask"].sum(1)
    losses = F.ctc_loss(log_probs.transpose(0, 1).float(), batch["targets"], lengths, batch["target_lengths"], blank=0,
                        reduction="none", zero_infinity=True)
    return (losses / batch["target_lengths"].clamp(min=1)).mean()


def distillation_loss(log_probs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """KL(teacher || reader) per frame, mean over the frames of the batch."""
    teacher, mask = batch["teacher"], batch["mask"].float()
    kl = (teacher * (teacher.clamp(min=1e-8).log() - log_probs)).sum(-1)
    return (kl * mask).sum() / mask.sum().clamp(min=1)


class LossModule(torch.nn.Module):
    def __init__(self, model: Recogniser, teacher_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.teacher_weight = teacher_weight

    def forward(self, batch: dict[str, torch.Tensor], step: int):
        log_probs = self.model(batch)
        ctc = ctc_loss(log_probs, batch)
        if "teacher" not in batch:
            return ctc
        distil = distillation_loss(log_probs, batch)
        return {"loss": ctc + self.teacher_weight * distil, "ctc": ctc.detach(), "distillation": distil.detach()}


# ---- evaluation ---------------------------------------------------------------------


@torch.no_grad()
def read_batches(model: Recogniser, items, batch_size: int = 8) -> list[list[str]]:
    """Greedy-decoded glosses of unbatched model inputs."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    read = []
    try:
        for start in range(0, len(items), batch_size):
            batch = collate_inputs(items[start: start + batch_size])
            batch = {key: value.to(device) for key, value in batch.items()}
            lengths = batch["mask"].sum(1).tolist()
            read += [model.decode_labels(labels) for labels in ctc_greedy_decode(model(batch), lengths)]
    finally:
        model.train(was_training)
    return read


def evaluator(model: Recogniser, dataset: RecognitionDataset):
    def evaluate() -> dict:
        from signgen.video.readability import corpus_wer

        items = [dataset[i] for i in range(len(dataset))]
        read = read_batches(model, [inputs for inputs, _ in items])
        return {"eval_wer": corpus_wer([v.glosses for v in dataset.videos], read)}

    return evaluate


# ---- the loop -------------------------------------------------------------------------


def build_model(config: RecogniserConfig, vocabulary: Sequence[str]) -> Recogniser:
    return Recogniser(glosses=list(vocabulary), **config_to_dict(config.model))


def _split_videos(data, split: str, prepare, in_memory: bool, progress: bool) -> list:
    """The videos of ``split`` as the reader reads them: prepared up front (``in_memory``) or
    when first read (:class:`LazyVideo`, for corpora larger than memory)."""
    samples = recognition_samples(data, split, progress=progress)
    if in_memory:
        return prepare_videos(samples, prepare, progress=progress, what=f"{split} videos")
    return [LazyVideo(sample, prepare) for sample in samples]


def train_recogniser(data: str | os.PathLike, out: str | os.PathLike, config: RecogniserConfig,
                     resume: bool | str | Path = False, progress: bool = True,
                     train_videos: Sequence[PreparedVideo] | None = None,
                     eval_videos: Sequence[PreparedVideo] | None = None) -> Recogniser:
    """Train a reader on split ``config.train.split`` of corpus ``data`` (or on prepared
    ``train_videos``) into ``out``; returns the final model, also saved to ``out/model``."""
    driver.check_out_dir(out, resume)
    train = config.train
    torch.manual_seed(train.seed)
    # The preparation depends only on the model config, not on the weights.
    shape = build_model(config, [])
    teacher = None
    if train.teacher:
        from signgen.models.recogniser import load_recogniser

        teacher = load_recogniser(train.teacher)
        if teacher.config.reader != "pose":
            raise SigngenError(f"train.teacher {train.teacher} is a {teacher.config.reader} reader; a teacher reads poses")
    if train_videos is None:
        train_videos = _split_videos(data, train.split, preparer(shape, teacher), train.in_memory, progress)
    if eval_videos is None and train.eval_split.lower() != "none" and data is not None:
        eval_videos = _split_videos(data, train.eval_split, preparer(shape, teacher), train.in_memory, progress)
    vocabulary = vocabulary_of(train_videos)
    if teacher is not None and [gloss_key(g) for g in teacher.glosses] != [gloss_key(g) for g in vocabulary]:
        raise SigngenError(f"train.teacher {train.teacher} reads other glosses than this corpus' training split")
    model = build_model(config, vocabulary)
    if eval_videos:
        known = {gloss_key(g) for g in vocabulary}
        kept = [v for v in eval_videos if all(gloss_key(g) in known for g in v.glosses)]
        if len(kept) < len(eval_videos):
            logger.warning("%d of %d evaluation videos hold glosses outside the training vocabulary; not evaluated",
                           len(eval_videos) - len(kept), len(eval_videos))
        eval_videos = kept
    dataset = RecognitionDataset(train_videos, augmenter(config, model, train=True), seed=train.seed)

    def load_model(folder: Path) -> None:
        saved = Recogniser.from_pretrained(folder, use_safetensors=True)
        if list(saved.config.glosses) != list(model.config.glosses):
            raise SigngenError(f"the training data's glosses differ from those of the checkpoint {folder.parent}")
        model.load_state_dict(saved.state_dict())

    stage = driver.Stage(
        name="recogniser",
        objective=LossModule(model, train.teacher_weight if teacher is not None else 0.0),
        parameters=list(model.parameters()),
        modules=[model],
        save_model=model.save_folder,
        load_model=load_model,
        items="videos",
        collate_fn=collate,
        evaluate=evaluator(model, RecognitionDataset(eval_videos, augmenter(config, model, train=False))) if eval_videos else None,
        eval_every=train.eval_every,
    )
    batch_size = min(train.batch_size, len(dataset))
    driver.train(stage, dataset, out, dataclasses.replace(train, batch_size=batch_size), config, resume=resume, progress=progress)
    return model.eval()

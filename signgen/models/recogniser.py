"""A continuous sign recogniser (a "reader"): a video or a pose sequence -> glosses, by CTC.

Two readers share one temporal model and one CTC head, and differ in what one frame is:

- ``reader="video"``: a crop around each hand (centred on the frame's pose, a fixed
  number of the video's shoulder widths across) and the whole frame at low resolution,
  each through a small CNN (one CNN for both hands, one for the frame);
- ``reader="pose"``: the 178-point pose, normalised on the video's shoulders (centre 0,
  width 1), with each hand also relative to its own wrist, and the presence of every point.

    per-frame features -> linear -> 1D convolutions -> bidirectional GRU -> glosses + blank

Frames are taken every ``frame_stride``-th (fingerspelled letters last about 25 frames at
25 fps, so half the frames still leave CTC room for a blank between repeated letters).
Greedy CTC decoding (:func:`ctc_greedy_decode`) reads the most likely label per frame,
merges repeats and drops blanks.

The vocabulary is part of the model config (``config.json``) and is also written as
``vocabulary.json``; a saved folder carries ``model_index.json`` with kind
``signgen-recogniser``, so a folder of another kind is refused in one line
(:func:`load_recogniser`).

Inputs are prepared from frames and poses by :func:`video_inputs` / :func:`pose_inputs`
(numpy; the training dataset and inference use the same functions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from signgen.errors import SigngenError
from signgen.poses import skeleton

KIND = "signgen-recogniser"
FORMAT_VERSION = 1
VOCABULARY_NAME = "vocabulary.json"
READERS = ("video", "pose")
BLANK = 0
HANDS = (skeleton.LEFT_HAND, skeleton.RIGHT_HAND)
POSE_FEATURES = skeleton.NUM_POINTS * 3 + 2 * 21 * 2
HOLD_FRAMES = 8  # of the frames read (after frame_stride)
WRISTS = (skeleton.LEFT_WRIST, skeleton.RIGHT_WRIST)
ELBOWS = (2, 3)  # skeleton.BODY_POINTS: shoulders, elbows, wrists, hips
FOREARM_REACH = 0.35  # a hand's centre lies about this share of the forearm beyond the wrist
CNN_GRID = 2  # the per-frame CNN's output: its last feature map pooled to CNN_GRID x CNN_GRID
RAW_GRID = 8  # each hand crop's brightness on a RAW_GRID x RAW_GRID grid, beside the CNN


def gloss_key(gloss: str) -> str:
    """How glosses are compared: case-insensitive (``schön`` is ``SCHÖN``)."""
    return gloss.strip().upper()


# ---------------------------------------------------------------- decoding


def ctc_greedy_decode(log_probs: torch.Tensor | np.ndarray, lengths: Sequence[int] | None = None) -> list[list[int]]:
    """Best-path CTC decoding of (B, T, C) scores: per frame the most likely label, repeats
    merged, blanks (label 0) dropped. Returns label ids (1-based, as in the scores)."""
    scores = torch.as_tensor(log_probs)
    best = scores.argmax(-1).cpu().numpy()
    out = []
    for b, labels in enumerate(best):
        labels = labels[: int(lengths[b])] if lengths is not None else labels
        decoded, previous = [], BLANK
        for label in labels.tolist():
            if label != previous and label != BLANK:
                decoded.append(label)
            previous = label
        out.append(decoded)
    return out


# ---------------------------------------------------------------- inputs


def _shoulders(xy: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, float]:
    """Median shoulder centre and width over the frames that show both shoulders."""
    both = (confidence[:, skeleton.LEFT_SHOULDER] > 0) & (confidence[:, skeleton.RIGHT_SHOULDER] > 0)
    both &= np.isfinite(xy[:, [skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]]).all((1, 2))
    if not both.any():
        raise SigngenError("the pose never shows both shoulders; it cannot be normalised for reading")
    left, right = xy[both, skeleton.LEFT_SHOULDER], xy[both, skeleton.RIGHT_SHOULDER]
    width = float(np.median(np.linalg.norm(left - right, axis=-1)))
    if not width > 0:
        raise SigngenError("the pose's shoulders coincide; it cannot be normalised for reading")
    return np.median((left + right) / 2, axis=0), width


def check_pose_arrays(xy: np.ndarray, confidence: np.ndarray) -> None:
    if xy.ndim != 3 or xy.shape[1:] != (skeleton.NUM_POINTS, 2) or confidence.shape != xy.shape[:2]:
        raise SigngenError(f"a reader needs 178-point poses (T, 178, 2), got {xy.shape}")
    if len(xy) == 0:
        raise SigngenError("the video is empty: no frames to read")


def normalised_pose(xy: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 178, 2) in shoulder widths around the median shoulder centre, 0 where absent, and
    the (T, 178) presence mask."""
    check_pose_arrays(xy, confidence)
    centre, width = _shoulders(xy, confidence)
    present = (confidence > 0) & np.isfinite(xy).all(-1)
    normal = np.where(present[..., None], (xy - centre) / width, 0.0).astype(np.float32)
    return normal, present


def pose_features(normal: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Per frame: normalised coordinates, presence, and each hand relative to its wrist
    (hand shape apart from where the hand is): (T, POSE_FEATURES) float32."""
    local = []
    for hand in HANDS:
        points, seen = normal[:, hand], present[:, hand]
        wrist = points[:, :1]
        local.append(np.where(seen[..., None] & seen[:, :1, None], (points - wrist) * 3.0, 0.0).reshape(len(normal), -1))
    return np.concatenate([normal.reshape(len(normal), -1), present.astype(np.float32), *local], axis=1).astype(np.float32)


def hand_centres(xy: np.ndarray, confidence: np.ndarray, max_gap: int = HOLD_FRAMES) -> np.ndarray:
    """(T, 2, 2) centre of each hand per frame: the mean of its points where detected; the
    centre of the nearest frame that detected it within ``max_gap`` frames (a detector
    misses a moving hand now and then); else, where the body's wrist and elbow are seen,
    the wrist moved on along the forearm (MediaPipe finds a drawn arm far more often than
    its hand); else NaN, a blank crop."""
    centres = np.full((len(xy), 2, 2), np.nan, dtype=np.float64)
    frames = np.arange(len(xy))
    for h, (hand, wrist, elbow) in enumerate(zip(HANDS, WRISTS, ELBOWS)):
        seen = (confidence[:, hand] > 0) & np.isfinite(xy[:, hand]).all(-1)
        counts = seen.sum(1)
        known = np.flatnonzero(counts > 0)
        if len(known):
            sums = np.where(seen[..., None], xy[:, hand], 0.0).sum(1)
            found = sums[known] / counts[known, None]
            after = np.clip(np.searchsorted(known, frames), 0, len(known) - 1)
            before = np.clip(after - 1, 0, len(known) - 1)
            nearest = np.where(np.abs(known[before] - frames) <= np.abs(known[after] - frames), before, after)
            close = np.abs(known[nearest] - frames) <= max_gap
            centres[close, h] = found[nearest[close]]
        arm = ((confidence[:, [wrist, elbow]] > 0) & np.isfinite(xy[:, [wrist, elbow]]).all(-1)).all(1)
        fallback = arm & np.isnan(centres[:, h, 0])
        centres[fallback, h] = xy[fallback, wrist] + FOREARM_REACH * (xy[fallback, wrist] - xy[fallback, elbow])
    return centres


def _crop(frame: np.ndarray, centre: np.ndarray, side: float, size: tuple[int, int]) -> np.ndarray:
    """The square of ``side`` pixels around ``centre`` resized to ``size`` (H, W), with
    the frame's edge pixels repeated beyond it."""
    import cv2

    height, width = size
    scale = width / side
    matrix = np.array([[scale, 0.0, width / 2 - scale * centre[0]], [0.0, scale * height / width, height / 2 - scale * height / width * centre[1]]])
    return cv2.warpAffine(frame, matrix, (width, height), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def video_inputs(frames: np.ndarray, xy: np.ndarray, confidence: np.ndarray, pose_size: tuple[int, int],
                 hand_size: int, frame_size: Sequence[int], hand_box: float) -> tuple[np.ndarray, np.ndarray]:
    """The video reader's inputs of uint8 RGB frames (T, H, W, 3) and their pose (in a frame
    of ``pose_size`` = (width, height) pixels, scaled to the frames): hand crops
    (T, 2, S, S, 3) and low-resolution frames (T, h, w, 3), uint8."""
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise SigngenError(f"the video is empty or not RGB frames (T, H, W, 3): shape {frames.shape}")
    check_pose_arrays(xy, confidence)
    if len(xy) != len(frames):
        raise SigngenError(f"the pose has {len(xy)} frames but the video {len(frames)}")
    height, width = frames.shape[1:3]
    scaled = xy * np.array([width / pose_size[0], height / pose_size[1]])
    _, shoulder_width = _shoulders(scaled, confidence)
    side = hand_box * shoulder_width
    centres = hand_centres(scaled, confidence)
    hands = np.zeros((len(frames), 2, hand_size, hand_size, 3), dtype=np.uint8)
    small = np.empty((len(frames), int(frame_size[0]), int(frame_size[1]), 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        frame = np.ascontiguousarray(frame)
        for h in range(2):
            if np.isfinite(centres[t, h]).all():
                hands[t, h] = _crop(frame, centres[t, h], side, (hand_size, hand_size))
        small[t] = cv2.resize(frame, (int(frame_size[1]), int(frame_size[0])), interpolation=cv2.INTER_AREA)
    return hands, small


def pose_inputs(xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """The pose reader's (T, POSE_FEATURES) inputs of a pose in pixels."""
    return pose_features(*normalised_pose(xy, confidence))


# ---------------------------------------------------------------- network


def _cnn(channels: Sequence[int], dropout: float) -> nn.Sequential:
    layers, previous = [], 3
    for width in channels:
        layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.GroupNorm(min(8, width), width), nn.SiLU(),
                   nn.Conv2d(width, width, 3, padding=1), nn.SiLU()]
        previous = width
    # A 2 x 2 grid, not one average: where in the crop the fingers are is the letter.
    layers += [nn.AdaptiveAvgPool2d(CNN_GRID), nn.Flatten(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class Recogniser(ModelMixin, ConfigMixin):
    """CTC gloss reader (see the module docstring). ``forward`` takes a batch dict:
    ``pose`` (B, T, POSE_FEATURES) float, or ``hands`` (B, T, 2, 3, S, S) and ``frame``
    (B, T, 3, h, w) in [-1, 1]; and ``mask`` (B, T) bool. It returns (B, T, V + 1)
    log-probabilities, label 0 the blank and label i the gloss ``glosses[i - 1]``."""

    @register_to_config
    def __init__(self, glosses: Sequence[str] = (), reader: str = "pose", hidden_size: int = 128, conv_layers: int = 2,
                 temporal_layers: int = 2, dropout: float = 0.1, cnn_channels: Sequence[int] = (16, 32, 64),
                 hand_size: int = 32, frame_size: Sequence[int] = (40, 32), hand_box: float = 0.8, frame_stride: int = 2):
        super().__init__()
        if reader not in READERS:
            raise SigngenError(f"recogniser reader must be one of {', '.join(READERS)}, not {reader!r}")
        if len({gloss_key(g) for g in glosses}) != len(glosses):
            raise SigngenError("the recogniser's vocabulary holds a gloss twice")
        self.gloss_ids = {gloss_key(g): i + 1 for i, g in enumerate(glosses)}
        if reader == "video":
            self.hand_cnn = _cnn(cnn_channels, dropout)
            self.frame_cnn = _cnn(cnn_channels, dropout)
            features = 3 * CNN_GRID * CNN_GRID * cnn_channels[-1] + 2 * RAW_GRID * RAW_GRID
        else:
            features = POSE_FEATURES
        self.input_projection = nn.Sequential(nn.Linear(features, hidden_size), nn.LayerNorm(hidden_size), nn.SiLU(), nn.Dropout(dropout))
        self.convs = nn.ModuleList(nn.Conv1d(hidden_size, hidden_size, 5, padding=2) for _ in range(conv_layers))
        self.conv_norms = nn.ModuleList(nn.LayerNorm(hidden_size) for _ in range(conv_layers))
        self.gru = nn.GRU(hidden_size, hidden_size, num_layers=temporal_layers, batch_first=True, bidirectional=True,
                          dropout=dropout if temporal_layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_size, len(glosses) + 1)

    @property
    def glosses(self) -> list[str]:
        return list(self.config.glosses)

    def knows(self, gloss: str) -> bool:
        return gloss_key(gloss) in self.gloss_ids

    def encode_glosses(self, glosses: Sequence[str]) -> list[int]:
        """Label ids of ``glosses``; a gloss outside the vocabulary is a SigngenError."""
        unknown = [g for g in glosses if gloss_key(g) not in self.gloss_ids]
        if unknown:
            raise SigngenError(f"glosses outside the recogniser's vocabulary: {' '.join(sorted(set(unknown))[:10])}")
        return [self.gloss_ids[gloss_key(g)] for g in glosses]

    def decode_labels(self, labels: Sequence[int]) -> list[str]:
        return [self.config.glosses[label - 1] for label in labels]

    def frame_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.reader == "pose":
            return batch["pose"]
        hands, frame, mask = batch["hands"], batch["frame"], batch["mask"]
        b, t = frame.shape[:2]
        crops = hands.flatten(0, 2)
        hand_features = self.hand_cnn(crops).unflatten(0, (b, t, 2)).flatten(2)
        # The hand's shape as plain coarse brightness: a signal the CNN need not learn first.
        raw = F.adaptive_avg_pool2d(crops.mean(1, keepdim=True), RAW_GRID).unflatten(0, (b, t, 2)).flatten(2)
        frame_features = self.frame_cnn(frame.flatten(0, 1)).unflatten(0, (b, t))
        features = torch.cat([hand_features, raw, frame_features], dim=-1)
        # Relative to the video's own mean over time: the signer, garment and background
        # stay the same through a video and are not the signing; a still video reads as 0.
        weights = mask[..., None].float()
        mean = (features * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp(min=1)
        return features - mean

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["mask"]
        x = self.input_projection(self.frame_features(batch)) * mask[..., None]
        for conv, norm in zip(self.convs, self.conv_norms):
            x = x + self.drop(F.silu(norm(conv(x.transpose(1, 2)).transpose(1, 2)))) * mask[..., None]
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = self.gru(packed)
        hidden, _ = nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=x.shape[1])
        return self.head(self.drop(hidden)).log_softmax(-1)

    # ---- one video --------------------------------------------------------------

    def inputs(self, xy: np.ndarray, confidence: np.ndarray, frames: np.ndarray | None = None,
               pose_size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
        """Unbatched inputs of one video (every ``frame_stride``-th frame): its pose in
        pixels of a ``pose_size`` (width, height) frame and, for the video reader, its
        uint8 frames."""
        stride = self.config.frame_stride
        if self.config.reader == "pose":
            return {"pose": pose_inputs(xy, confidence)[::stride]}
        if frames is None:
            raise SigngenError("the video reader needs the frames, not only a pose")
        if pose_size is None:
            pose_size = (frames.shape[2], frames.shape[1])
        index = np.arange(0, len(frames), stride)
        frames, xy, confidence = np.asarray(frames)[index], xy[index], confidence[index]
        hands, small = video_inputs(frames, xy, confidence, pose_size, self.config.hand_size, self.config.frame_size,
                                    self.config.hand_box)
        return {"hands": hands, "frame": small}

    @torch.no_grad()
    def read(self, xy: np.ndarray, confidence: np.ndarray, frames: np.ndarray | None = None,
             pose_size: tuple[int, int] | None = None) -> list[str]:
        """The glosses read from one video (see :meth:`inputs`)."""
        batch = collate_inputs([self.inputs(xy, confidence, frames, pose_size)])
        device = next(self.parameters()).device
        batch = {key: value.to(device) for key, value in batch.items()}
        was_training = self.training
        self.eval()
        try:
            log_probs = self(batch)
        finally:
            self.train(was_training)
        return self.decode_labels(ctc_greedy_decode(log_probs)[0])

    # ---- folder ------------------------------------------------------------------

    def save_folder(self, folder: str | os.PathLike) -> None:
        """``save_pretrained`` plus the manifest and the vocabulary."""
        folder = Path(folder)
        self.save_pretrained(folder, safe_serialization=True)
        manifest = {"kind": KIND, "format_version": FORMAT_VERSION, "reader": self.config.reader,
                    "glosses": len(self.config.glosses)}
        (folder / "model_index.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (folder / VOCABULARY_NAME).write_text(json.dumps(list(self.config.glosses), ensure_ascii=False, indent=1) + "\n",
                                              encoding="utf-8")


def uint8_to_model(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [-1, 1]."""
    return images.movedim(-1, -3).float() / 127.5 - 1.0


def collate_inputs(items: Sequence[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Pad unbatched inputs (numpy, as :meth:`Recogniser.inputs` returns them, or tensors
    already in model form) to one batch with its ``mask``."""
    lengths = [len(next(iter(item.values()))) for item in items]
    frames = max(lengths)
    batch = {"mask": torch.arange(frames)[None] < torch.tensor(lengths)[:, None]}
    for key in items[0]:
        values = [torch.as_tensor(item[key]) for item in items]
        if values[0].dtype == torch.uint8:
            values = [uint8_to_model(v) for v in values]
        padded = values[0].new_zeros((len(items), frames, *values[0].shape[1:]))
        for b, value in enumerate(values):
            padded[b, : len(value)] = value
        batch[key] = padded
    return batch


def load_recogniser(folder: str | os.PathLike, device: str | torch.device = "cpu") -> Recogniser:
    """A recogniser folder (``OUT/model`` of ``signgen train recogniser``, or the run
    folder ``OUT`` itself); another kind of folder is one SigngenError line."""
    from signgen.files import MANIFEST_NAME, read_manifest

    folder = Path(folder)
    if folder.is_dir() and not (folder / MANIFEST_NAME).is_file() and (folder / "model" / MANIFEST_NAME).is_file():
        folder = folder / "model"
    read_manifest(folder, KIND, FORMAT_VERSION, "signgen recogniser")
    try:
        model = Recogniser.from_pretrained(folder, use_safetensors=True)
    except SigngenError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        from signgen.errors import first_line

        raise SigngenError(f"cannot load the recogniser in {folder}: {first_line(error)}") from None
    return model.to(device).eval()

"""Training the gloss-to-pose model (``signgen train g2p``) on (glosses, Pose) pairs.

The objective and the model's save/load; the loop, checkpoints, log and output folder are
:mod:`signgen.training.driver`'s. The final model (EMA weights when EMA is on) is
``OUT/model``, loadable with ``signgen.models.g2p.load_model(OUT)``. Every loss term below
is logged (averaged over the log window) beside ``loss``, the weighted total.

Loss (all in normalised space, shoulder widths; points weighted body/face/hands):
  position   L1 of coordinates, masked by the reference's confidence
  velocity   L1 of frame-to-frame displacement (frames and points present in both)
  motion     |mean speed of prediction - of reference| per sequence and point: the guard
             against regressing to a still mean pose, which the L1 terms alone allow
             when timing is uncertain
  confidence binary cross-entropy of the confidence logits against "point is present"
  duration   MSE of the predicted log frames per gloss against the aligner's durations
  alignment  the aligner's forward-sum loss (all monotonic alignments), plus after ``bin_start_step`` the
             "bin" loss that pulls its soft alignment toward the hard (Viterbi) one
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from signgen.config import G2PConfig, G2PLossConfig, config_to_dict
from signgen.errors import SigngenError
from signgen.models.g2p import GlossToPoseModel, alignment_prior, length_regulate, monotonic_alignment
from signgen.poses import skeleton
from signgen.training import driver

if TYPE_CHECKING:
    from pose_format import Pose

logger = logging.getLogger(__name__)

UNREACHABLE = -1e9  # log-probability of impossible states; finite, so gradients stay finite


# ---- data -----------------------------------------------------------------------------


@dataclass
class Example:
    """One training sentence in normalised space."""

    glosses: list[str]
    xy: np.ndarray  # (T, 178, 2) float32, shoulder-width units
    present: np.ndarray  # (T, 178) bool


def prepare_examples(pairs: Iterable[tuple[Sequence[str], Pose]]) -> list[Example]:
    """(glosses, Pose) pairs -> examples: 178 points, short gaps filled, 25 fps, normalised.
    Sentences that cannot be used (no shoulders, fewer frames than glosses) are skipped
    with a warning."""
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.transform import normalize, prepare

    examples, skipped = [], 0
    for glosses, pose in pairs:
        glosses = [g for g in glosses if g.strip()]
        try:
            xy, confidence = pose_arrays(normalize(prepare(pose)))
        except SigngenError:
            skipped += 1
            continue
        if not glosses or len(xy) < len(glosses):
            skipped += 1
            continue
        examples.append(Example(list(glosses), xy, confidence > 0))
    if skipped:
        logger.warning("skipped %d of %d sentences (no shoulders seen or fewer frames than glosses)", skipped, skipped + len(examples))
    if not examples:
        raise SigngenError("no usable training sentences")
    return examples


def corpus_statistics(examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-point mean and spread (standard deviation) of the present coordinates, and the
    mean log frames per gloss (a uniform split), which initialise the model's output."""
    total = np.zeros((skeleton.NUM_POINTS, 2))
    squares = np.zeros((skeleton.NUM_POINTS, 2))
    count = np.zeros((skeleton.NUM_POINTS, 1))
    for example in examples:
        mask = example.present[..., None]
        total += (example.xy * mask).sum(0)
        squares += (example.xy.astype(np.float64) ** 2 * mask).sum(0)
        count += mask.sum(0)
    count = np.maximum(count, 1)
    mean = total / count
    spread = np.sqrt(np.maximum(squares / count - mean ** 2, 0))
    log_duration = float(np.mean([math.log(len(e.xy) / len(e.glosses)) for e in examples]))
    return mean.astype(np.float32), spread.astype(np.float32), log_duration


class ExampleDataset(torch.utils.data.Dataset):
    def __init__(self, examples: Sequence[Example], model: GlossToPoseModel):
        self.examples = examples
        self.ids = [model.encode_glosses(e.glosses) for e in examples]

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int):
        example = self.examples[index]
        return self.ids[index], torch.from_numpy(example.xy), torch.from_numpy(example.present)


def collate(items) -> dict[str, torch.Tensor]:
    """Pad a batch; the aligner's beta-binomial prior is built here, on the loader side."""
    ids, poses, present = zip(*items)
    gloss_lengths = [len(i) for i in ids]
    frame_lengths = [len(p) for p in poses]
    glosses, frames = max(gloss_lengths), max(frame_lengths)
    batch = len(items)
    out = {
        "gloss_ids": torch.zeros((batch, glosses), dtype=torch.long),
        "poses": torch.zeros((batch, frames, skeleton.NUM_POINTS, 2)),
        "present": torch.zeros((batch, frames, skeleton.NUM_POINTS), dtype=torch.bool),
    }
    for b in range(batch):
        out["gloss_ids"][b, :gloss_lengths[b]] = ids[b]
        out["poses"][b, :frame_lengths[b]] = poses[b]
        out["present"][b, :frame_lengths[b]] = present[b]
    out["gloss_mask"] = torch.arange(glosses)[None] < torch.tensor(gloss_lengths)[:, None]
    out["frame_mask"] = torch.arange(frames)[None] < torch.tensor(frame_lengths)[:, None]
    out["log_prior"] = alignment_prior(frame_lengths, gloss_lengths, frames, glosses)
    return out


# ---- losses ---------------------------------------------------------------------------


def forward_sum_loss(log_probs: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
    """Minus the log-likelihood, per frame, of all monotonic alignments in which every
    frame belongs to one gloss and every gloss gets at least one frame (the forward
    algorithm; the soft twin of :func:`signgen.models.g2p.monotonic_alignment`).

    RAD-TTS computes this with CTC and a blank token; with glosses that last tens of
    frames a blank explains almost every frame and each gloss only needs one peak, so the
    blank-free form is used here."""
    batch, frames, glosses = log_probs.shape
    frame_lengths, gloss_lengths = frame_mask.sum(1), gloss_mask.sum(1)
    scores = log_probs.float()
    alpha = torch.full((batch, glosses), UNREACHABLE, device=log_probs.device)
    alpha = torch.cat([scores[:, 0, :1], alpha[:, 1:]], dim=1)
    for t in range(1, frames):
        from_previous = F.pad(alpha[:, :-1], (1, 0), value=UNREACHABLE)
        updated = torch.logaddexp(alpha, from_previous) + scores[:, t]
        alpha = torch.where((t < frame_lengths)[:, None], updated, alpha)
    likelihood = alpha.gather(1, (gloss_lengths - 1)[:, None])[:, 0]
    return -(likelihood / frame_lengths).mean()


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-8)


def mean_speed(xy: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence and point, the mean frame-to-frame displacement over frame pairs where
    the point is present in both (B, J), and the number of such pairs (B, J)."""
    both = (present[:, 1:] & present[:, :-1]).float()
    step = (xy[:, 1:] - xy[:, :-1]).norm(dim=-1)
    pairs = both.sum(1)
    return (step * both).sum(1) / pairs.clamp(min=1), pairs


def g2p_losses(model: GlossToPoseModel, batch: dict[str, torch.Tensor], loss: G2PLossConfig, step: int) -> dict[str, torch.Tensor]:
    """All loss terms for one batch, their weighted sum under ``total``, and (detached)
    ``motion_ratio``, the predicted over the reference mean hand speed."""
    gloss_ids, gloss_mask = batch["gloss_ids"], batch["gloss_mask"]
    poses, present, frame_mask = batch["poses"], batch["present"], batch["frame_mask"]
    present = present & frame_mask[..., None]

    log_probs = model.alignment_log_probs(gloss_ids, gloss_mask, poses, present, frame_mask, batch["log_prior"])
    alignment = forward_sum_loss(log_probs, frame_mask, gloss_mask)
    durations = monotonic_alignment(log_probs, frame_mask, gloss_mask)
    gloss_index, _, _ = length_regulate(durations, gloss_mask)
    hard = log_probs.gather(2, gloss_index[..., None])[..., 0]
    bin_loss = -_weighted_mean(hard, frame_mask.float())

    coordinates, confidence_logits, _, log_durations = model(gloss_ids, gloss_mask, durations)
    weights = point_weights(loss).to(poses.device)
    point_weight = present.float() * weights
    position = _weighted_mean((coordinates - poses).abs().mean(-1), point_weight)

    both = present[:, 1:] & present[:, :-1]
    velocity_error = ((coordinates[:, 1:] - coordinates[:, :-1]) - (poses[:, 1:] - poses[:, :-1])).abs().mean(-1)
    velocity = _weighted_mean(velocity_error, both.float() * weights)

    predicted_speed, pairs = mean_speed(coordinates, present)
    reference_speed, _ = mean_speed(poses, present)
    seen = (pairs > 0).float() * weights
    motion = _weighted_mean((predicted_speed - reference_speed).abs(), seen)
    hands = torch.zeros_like(weights, dtype=torch.bool)
    hands[skeleton.LEFT_HAND] = hands[skeleton.RIGHT_HAND] = True
    hand_seen = (pairs > 0) & hands
    motion_ratio = predicted_speed[hand_seen].sum() / reference_speed[hand_seen].sum().clamp(min=1e-8)

    target = present.float()
    confidence = _weighted_mean(F.binary_cross_entropy_with_logits(confidence_logits, target, reduction="none"),
                                frame_mask[..., None].float().expand_as(target))
    duration = _weighted_mean((log_durations - durations.clamp(min=1).float().log()) ** 2, gloss_mask.float())

    bin_weight = loss.bin_weight if step >= loss.bin_start_step else 0.0
    total = (loss.position_weight * position + loss.velocity_weight * velocity + loss.motion_weight * motion
             + loss.confidence_weight * confidence + loss.duration_weight * duration
             + loss.alignment_weight * alignment + bin_weight * bin_loss)
    return {"total": total, "position": position, "velocity": velocity, "motion": motion, "confidence": confidence,
            "duration": duration, "alignment": alignment, "bin": bin_loss, "motion_ratio": motion_ratio.detach()}


class LossModule(torch.nn.Module):
    """The model with its losses as ``forward``, so that accelerate's wrappers (DDP,
    autocast) see every parameter used in one call."""

    def __init__(self, model: GlossToPoseModel, loss: G2PLossConfig):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """The driver's loss dict: the weighted total as ``loss``, every term beside it."""
        losses = g2p_losses(self.model, batch, self.loss, step)
        return {"loss": losses.pop("total"), **losses}


# ---- the loop -------------------------------------------------------------------------


def build_model(config: G2PConfig, examples: Sequence[Example]) -> GlossToPoseModel:
    """A fresh model whose vocabulary is the examples' glosses (first-seen order) and whose
    output starts at their mean pose."""
    vocabulary = list(dict.fromkeys(g for e in examples for g in e.glosses))
    model = GlossToPoseModel(glosses=vocabulary, **config_to_dict(config.model))
    model.set_corpus_statistics(*corpus_statistics(examples))
    return model


def train_g2p(examples: Sequence[Example], out: str | os.PathLike, config: G2PConfig, resume: bool | str | Path = False,
              progress: bool = True) -> GlossToPoseModel:
    """Train on ``examples`` into folder ``out``; returns the final model (EMA weights
    when EMA is on), also saved to ``out/model``. A batch holds at most all examples."""
    driver.check_out_dir(out, resume)  # before any work: a folder the run may not write into is refused
    train = config.train
    torch.manual_seed(train.seed)
    model = build_model(config, examples)
    dataset = ExampleDataset(examples, model)

    def load_model(folder: Path) -> None:
        saved = GlossToPoseModel.from_pretrained(folder, use_safetensors=True)  # never a pickle
        if list(saved.config.glosses) != list(model.config.glosses):
            raise SigngenError(f"the training data's glosses differ from those of the checkpoint {folder.parent}")
        model.load_state_dict(saved.state_dict())

    stage = driver.Stage(
        name="g2p",
        objective=LossModule(model, config.loss),
        parameters=list(model.parameters()),
        modules=[model],
        save_model=model.save_pretrained,
        load_model=load_model,
        items="sentences",
        collate_fn=collate,
    )
    batch_size = min(train.batch_size, len(dataset))
    driver.train(stage, dataset, out, dataclasses.replace(train, batch_size=batch_size), config, resume=resume, progress=progress)
    return model.eval()


def point_weights(loss: G2PLossConfig) -> torch.Tensor:
    """The per-point loss weights, a (178,) tensor: body, face and hand weights."""
    from signgen.poses import skeleton

    weights = torch.empty(skeleton.NUM_POINTS)
    weights[skeleton.BODY] = loss.body_weight
    weights[skeleton.FACE] = loss.face_weight
    weights[skeleton.LEFT_HAND] = loss.hand_weight
    weights[skeleton.RIGHT_HAND] = loss.hand_weight
    return weights

"""A learned gloss-to-pose model: a non-autoregressive transformer with per-gloss
durations (FastSpeech-style), trained on (glosses, pose sequence) pairs.

    glosses -> embeddings + sinusoidal positions -> transformer encoder
            -> duration predictor (log frames per gloss)
            -> length regulation: each gloss state repeated over its frames, plus the
               frame's absolute position and its phase within the gloss (0 -> 1)
            -> transformer decoder over frames -> 178 x 2 coordinates + confidence logits

Coordinates live in normalised space (``signgen.poses.transform.normalize``: shoulder
centre 0, shoulder width 1); the head predicts an offset from the training corpus's mean
pose, scaled by its per-coordinate spread, so that an untrained model starts at the mean.

Corpora carry no per-gloss alignment, so training learns one (RAD-TTS, "One TTS
Alignment To Rule Them All", Badlani et al. 2022): a small aligner scores every frame
against every gloss, is trained with the CTC-style forward-sum loss over all monotonic
alignments, and a Viterbi pass (monotonic alignment search) over its scores gives hard
durations. Those durations drive length regulation during training and are the targets of
the duration predictor. A beta-binomial prior makes the early alignment close to a uniform
split, which the aligner then refines. See docs/g2p.md.

The vocabulary (the training corpus's glosses) is part of the model config, so
``save_pretrained`` writes it into ``config.json`` and ``from_pretrained`` restores it.
Rendering with a trained model (glosses -> Pose, with the lexicon for unknown glosses) is
``signgen.pipelines.gloss_to_pose.load_gloss_to_pose``.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from signgen.errors import SigngenError, first_line
from signgen.poses import skeleton
from signgen.poses.lexicon import folded_key
from signgen.poses.transform import TARGET_FPS

PAD_ID, UNKNOWN_ID = 0, 1
SPECIAL_TOKENS = 2
PHASE_FREQUENCIES = 8
MASKED_LOG_PROB = -1e4
MIN_SPREAD = 1e-2  # shoulder widths; keeps near-static points from amplifying noise


def sinusoidal_encoding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sine/cosine encoding of (..., L) float positions -> (..., L, dim)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device) / half)
    angles = positions[..., None].float() * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def phase_encoding(phase: torch.Tensor) -> torch.Tensor:
    """Smooth features of the within-gloss phase in [0, 1): sin and cos of k*pi*phase."""
    k = torch.arange(1, PHASE_FREQUENCIES + 1, device=phase.device, dtype=torch.float32)
    angles = math.pi * phase[..., None].float() * k
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ConvStack(nn.Module):
    """Conv1d -> ReLU -> LayerNorm -> dropout blocks over (B, L, C) sequences, as in
    FastSpeech's variance predictors."""

    def __init__(self, in_size: int, size: int, layers: int, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(in_size if i == 0 else size, size, kernel_size, padding=kernel_size // 2) for i in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(size) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms):
            x = x * mask[..., None]
            x = self.dropout(norm(F.relu(conv(x.transpose(1, 2)).transpose(1, 2))))
        return x * mask[..., None]


def length_regulate(durations: torch.Tensor, gloss_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For (B, N) integer durations: per frame the index of its gloss (B, T), its phase
    within the gloss in [0, 1) (B, T) and the frame mask (B, T), T the longest total."""
    durations = durations.long() * gloss_mask.long()
    ends = durations.cumsum(1)
    totals = ends[:, -1]
    frames = int(totals.max().item()) if len(totals) else 0
    t = torch.arange(frames, device=durations.device).expand(len(durations), frames)
    gloss_index = torch.searchsorted(ends, t.contiguous(), right=True).clamp(max=durations.shape[1] - 1)
    starts = (ends - durations).gather(1, gloss_index)
    lengths = durations.gather(1, gloss_index).clamp(min=1)
    phase = (t - starts + 0.5) / lengths
    return gloss_index, phase, t < totals[:, None]


def monotonic_alignment(log_probs: torch.Tensor, frame_mask: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
    """Viterbi (monotonic alignment search): the most likely assignment of frames to
    glosses in order, every gloss at least one frame. (B, T, N) log-probabilities -> (B, N)
    integer durations. Dynamic programming over time, vectorised over batch and glosses."""
    batch, frames, glosses = log_probs.shape
    frame_lengths = frame_mask.sum(1)
    gloss_lengths = gloss_mask.sum(1)
    if bool((frame_lengths < gloss_lengths).any()):
        raise SigngenError("a sequence has fewer frames than glosses; it cannot be aligned")
    scores = log_probs.detach().float().masked_fill(~gloss_mask[:, None, :], -torch.inf)
    value = torch.full((batch, glosses), -torch.inf, device=log_probs.device)
    value[:, 0] = scores[:, 0, 0]
    advanced = torch.zeros((batch, frames, glosses), dtype=torch.bool, device=log_probs.device)
    for t in range(1, frames):
        from_previous = F.pad(value[:, :-1], (1, 0), value=-torch.inf)
        advance = from_previous > value
        advanced[:, t] = advance
        updated = torch.where(advance, from_previous, value) + scores[:, t]
        # Past a sequence's last frame its values stay as they were at that frame.
        value = torch.where((t < frame_lengths)[:, None], updated, value)
    durations = torch.zeros((batch, glosses), dtype=torch.long, device=log_probs.device)
    current = gloss_lengths - 1
    rows = torch.arange(batch, device=log_probs.device)
    for t in range(frames - 1, -1, -1):
        active = t < frame_lengths
        durations[rows[active], current[active]] += 1
        step_back = active & advanced[rows, t, current] & (t > 0)
        current = current - step_back.long()
    return durations


@lru_cache(maxsize=4096)
def _beta_binomial_prior(frames: int, glosses: int, scale: float = 1.0) -> np.ndarray:
    from scipy.stats import betabinom

    t = np.arange(1, frames + 1)[:, None]
    prior = betabinom(glosses - 1, scale * t, scale * (frames + 1 - t)).pmf(np.arange(glosses)[None, :])
    return np.log(np.maximum(prior, 1e-8)).astype(np.float32)


def alignment_prior(frame_lengths: Sequence[int], gloss_lengths: Sequence[int], frames: int, glosses: int) -> torch.Tensor:
    """(B, T, N) log beta-binomial prior that favours a near-diagonal (uniform) alignment."""
    prior = np.zeros((len(frame_lengths), frames, glosses), dtype=np.float32)
    for b, (t, n) in enumerate(zip(frame_lengths, gloss_lengths)):
        prior[b, :t, :n] = _beta_binomial_prior(int(t), int(n))
    return torch.from_numpy(prior)


class GlossToPoseModel(ModelMixin, ConfigMixin):
    """Non-autoregressive gloss-to-pose transformer (see the module docstring).

    Buffers ``mean_pose`` and ``pose_spread`` (178, 2) and ``mean_log_duration`` hold the
    training corpus's statistics; set them with :meth:`set_corpus_statistics` before
    training. Inputs and outputs of :meth:`forward` are in normalised space.
    """

    @register_to_config
    def __init__(self, glosses: Sequence[str] = (), hidden_size: int = 256, num_heads: int = 4,
                 encoder_layers: int = 3, decoder_layers: int = 3, ff_size: int = 1024, dropout: float = 0.1,
                 aligner_size: int = 128, num_points: int = skeleton.NUM_POINTS, fps: float = TARGET_FPS):
        super().__init__()
        if hidden_size % num_heads or hidden_size % 2:
            raise SigngenError(f"g2p hidden_size {hidden_size} must be even and divisible by num_heads {num_heads}")
        self.gloss_ids = {folded_key(g): i + SPECIAL_TOKENS for i, g in enumerate(glosses)}
        self.gloss_embedding = nn.Embedding(len(glosses) + SPECIAL_TOKENS, hidden_size, padding_idx=PAD_ID)

        def transformer(layers: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(hidden_size, num_heads, ff_size, dropout, batch_first=True, norm_first=True)
            return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(hidden_size), enable_nested_tensor=False)

        self.encoder = transformer(encoder_layers)
        self.duration_predictor = ConvStack(hidden_size, hidden_size, layers=2, dropout=dropout)
        self.duration_head = nn.Linear(hidden_size, 1)
        self.phase_projection = nn.Linear(2 * PHASE_FREQUENCIES, hidden_size)
        self.decoder = transformer(decoder_layers)
        self.pose_head = nn.Linear(hidden_size, num_points * 3)
        # The aligner has its own gloss embedding, so that the decoder's losses do not move
        # its keys; it sees standardised coordinates plus the presence mask of every point.
        self.aligner_embedding = nn.Embedding(len(glosses) + SPECIAL_TOKENS, aligner_size, padding_idx=PAD_ID)
        # Kernel 1: a gloss's key is its own; wider kernels let the zero padding at the
        # sentence edges dominate the keys of the first and last glosses.
        self.aligner_glosses = ConvStack(aligner_size, aligner_size, layers=2, kernel_size=1, dropout=0.0)
        self.aligner_frames = ConvStack(num_points * 3, aligner_size, layers=3, dropout=0.0)
        self.register_buffer("mean_pose", torch.zeros(num_points, 2))
        self.register_buffer("pose_spread", torch.ones(num_points, 2))
        self.register_buffer("mean_log_duration", torch.zeros(()))
        nn.init.zeros_(self.pose_head.weight)
        nn.init.zeros_(self.pose_head.bias)

    # ---- vocabulary -------------------------------------------------------------------

    def knows(self, gloss: str) -> bool:
        return folded_key(gloss) in self.gloss_ids

    def encode_glosses(self, glosses: Sequence[str]) -> torch.Tensor:
        """Token ids of ``glosses`` (case- and umlaut-spelling-insensitive); unknown -> 1."""
        return torch.tensor([self.gloss_ids.get(folded_key(g), UNKNOWN_ID) for g in glosses], dtype=torch.long)

    def set_corpus_statistics(self, mean_pose: np.ndarray, pose_spread: np.ndarray, mean_log_duration: float) -> None:
        self.mean_pose.copy_(torch.as_tensor(mean_pose, dtype=torch.float32))
        self.pose_spread.copy_(torch.as_tensor(pose_spread, dtype=torch.float32).clamp(min=MIN_SPREAD))
        self.mean_log_duration.fill_(float(mean_log_duration))

    # ---- network ------------------------------------------------------------------------

    def encode(self, gloss_ids: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(gloss_ids.shape[1], device=gloss_ids.device).expand_as(gloss_ids)
        x = self.gloss_embedding(gloss_ids) + sinusoidal_encoding(positions, self.config.hidden_size)
        return self.encoder(x, src_key_padding_mask=~gloss_mask)

    def predict_log_durations(self, states: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
        # Detached, as in Glow-TTS: the duration regression should not bend the encoder
        # states that the decoder reads.
        hidden = self.duration_predictor(states.detach(), gloss_mask.float())
        return self.duration_head(hidden)[..., 0] + self.mean_log_duration

    def decode(self, states: torch.Tensor, gloss_mask: torch.Tensor, durations: torch.Tensor):
        """Length-regulate encoder states by ``durations`` and decode the frames: returns
        coordinates (B, T, J, 2), confidence logits (B, T, J) and the frame mask (B, T)."""
        gloss_index, phase, frame_mask = length_regulate(durations, gloss_mask)
        frames = states.gather(1, gloss_index[..., None].expand(-1, -1, states.shape[-1]))
        t = torch.arange(frames.shape[1], device=frames.device).expand(frames.shape[:2])
        frames = frames + sinusoidal_encoding(t, self.config.hidden_size) + self.phase_projection(phase_encoding(phase))
        hidden = self.decoder(frames, src_key_padding_mask=~frame_mask)
        out = self.pose_head(hidden).unflatten(-1, (self.config.num_points, 3))
        coordinates = self.mean_pose + out[..., :2] * self.pose_spread
        return coordinates, out[..., 2], frame_mask

    def forward(self, gloss_ids: torch.Tensor, gloss_mask: torch.Tensor, durations: torch.Tensor | None = None):
        """Decode with the given (B, N) durations (training) or the predicted ones. Returns
        coordinates, confidence logits, frame mask and the predicted log durations."""
        states = self.encode(gloss_ids, gloss_mask)
        log_durations = self.predict_log_durations(states, gloss_mask)
        if durations is None:
            durations = durations_from_log(log_durations, gloss_mask)
        coordinates, confidence_logits, frame_mask = self.decode(states, gloss_mask, durations)
        return coordinates, confidence_logits, frame_mask, log_durations

    def alignment_log_probs(self, gloss_ids: torch.Tensor, gloss_mask: torch.Tensor, poses: torch.Tensor,
                            present: torch.Tensor, frame_mask: torch.Tensor, log_prior: torch.Tensor | None = None):
        """(B, T, N) log-probability of each frame belonging to each gloss: a softmax over
        glosses of negative squared distances between frame and gloss embeddings, times
        the prior where given (RAD-TTS's aligner)."""
        standardised = ((poses - self.mean_pose) / self.pose_spread) * present[..., None]
        frame_features = torch.cat([standardised.flatten(2), present.float()], dim=-1)
        queries = self.aligner_frames(frame_features, frame_mask.float())
        keys = self.aligner_glosses(self.aligner_embedding(gloss_ids), gloss_mask.float())
        # Squared distances written out: cdist's gradient is NaN at zero distance (padding).
        squared = (queries.pow(2).sum(-1)[..., None] + keys.pow(2).sum(-1)[:, None, :]
                   - 2 * queries @ keys.transpose(1, 2))
        # Per-channel mean: LayerNormed features put this near 2 at the start, so that the
        # prior leads the early alignments and the learned scores take over gradually.
        energy = -squared / queries.shape[-1]
        # Padding gets a large finite score, not -inf: CTC's gradient is NaN at -inf inputs.
        energy = energy.masked_fill(~gloss_mask[:, None, :], MASKED_LOG_PROB)
        log_probs = energy.log_softmax(-1)
        if log_prior is not None:
            log_probs = log_probs + log_prior
        return log_probs.masked_fill(~gloss_mask[:, None, :], MASKED_LOG_PROB)

    # ---- inference ----------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, glosses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised (T, 178, 2) coordinates and (T, 178) confidence for one sentence;
        points the model thinks invisible get confidence 0."""
        if not glosses:
            raise SigngenError("no glosses to generate")
        unknown = [g for g in glosses if not self.knows(g)]
        if unknown:
            raise SigngenError(f"gloss(es) not in the model's vocabulary: {' '.join(unknown)}")
        was_training = self.training
        self.eval()
        try:
            ids = self.encode_glosses(glosses)[None].to(self.device)
            mask = torch.ones_like(ids, dtype=torch.bool)
            coordinates, confidence_logits, _, _ = self(ids, mask)
        finally:
            self.train(was_training)
        confidence = torch.sigmoid(confidence_logits[0]).float()
        confidence = torch.where(confidence >= 0.5, confidence, torch.zeros_like(confidence))
        return coordinates[0].float().cpu().numpy(), confidence.cpu().numpy()


def durations_from_log(log_durations: torch.Tensor, gloss_mask: torch.Tensor) -> torch.Tensor:
    """Integer frames per gloss from predicted log durations, at least one each; rounding
    the running total (not each gloss) keeps the sentence length unbiased."""
    ends = torch.round(torch.cumsum(log_durations.exp() * gloss_mask, dim=1))
    durations = torch.diff(ends, dim=1, prepend=torch.zeros_like(ends[:, :1])).long()
    return durations.clamp(min=1) * gloss_mask.long()


# Where `signgen train g2p` leaves the trained model inside its output folder.
TRAINED_MODEL_FOLDER = "model"


def load_model(path: str | os.PathLike) -> GlossToPoseModel:
    """Load a trained model folder (``config.json`` + safetensors weights), or the output
    folder of ``signgen train g2p`` (its ``model/``)."""
    if os.path.isfile(os.path.join(path, TRAINED_MODEL_FOLDER, "config.json")):
        path = os.path.join(path, TRAINED_MODEL_FOLDER)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise SigngenError(f"not a g2p model folder (no config.json): {path}")
    try:
        model = GlossToPoseModel.from_pretrained(path)
    except (OSError, ValueError, KeyError) as error:
        raise SigngenError(f"cannot load the g2p model in {path}: {first_line(error)}") from None
    return model.eval()

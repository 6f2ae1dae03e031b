"""Stage 1 of FPDM: the fusion embedding of a source appearance and a target pose.

The combiner follows FPDM (after CLIP4Cir's Combiner): both embeddings are projected, an MLP
reads their concatenation, and a learned, input-dependent gate ``g`` in (0, 1) mixes the
inputs back in as a residual::

    fused = normalize( MLP([img; pose]) + g * pose + (1 - g) * img )

It is trained with InfoNCE so that ``fused`` retrieves the target image's embedding among
the batch. FPDM's source enhancement appends every source image to the batch as its own
(query, key) pair: the query of pair i must then tell the target of i from the source of i,
the same signer in another pose, which forces the pose into the embedding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

# CLIP caps the learned logit scale at 100 (temperature 0.01) to keep training stable.
MAX_LOGIT_SCALE = math.log(100.0)


class FusionModule(ModelMixin, ConfigMixin):
    """Combines (B, embed_dim) image and pose embeddings into an L2-normalised fusion
    embedding; also holds the learnable InfoNCE temperature (as a log logit scale)."""

    @register_to_config
    def __init__(self, embed_dim: int = 64, hidden_dim: int = 128, dropout: float = 0.1, temperature_init: float = 0.07):
        super().__init__()
        self.image_projection = torch.nn.Linear(embed_dim, hidden_dim)
        self.pose_projection = torch.nn.Linear(embed_dim, hidden_dim)
        self.feature_dropout = torch.nn.Dropout(dropout)
        self.combiner = torch.nn.Linear(2 * hidden_dim, hidden_dim)
        self.output = torch.nn.Linear(hidden_dim, embed_dim)
        self.gate = torch.nn.Sequential(
            torch.nn.Linear(2 * hidden_dim, hidden_dim),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden_dim, 1),
            torch.nn.Sigmoid(),
        )
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / temperature_init)))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    def forward(self, image_embedding: torch.Tensor, pose_embedding: torch.Tensor) -> torch.Tensor:
        image_embedding = F.normalize(image_embedding, dim=-1)
        pose_embedding = F.normalize(pose_embedding, dim=-1)
        joint = torch.cat(
            [
                self.feature_dropout(F.relu(self.image_projection(image_embedding))),
                self.feature_dropout(F.relu(self.pose_projection(pose_embedding))),
            ],
            dim=-1,
        )
        mixed = self.output(self.feature_dropout(F.relu(self.combiner(joint))))
        gate = self.gate(joint)
        return F.normalize(mixed + gate * pose_embedding + (1 - gate) * image_embedding, dim=-1)


def info_nce_loss(queries: torch.Tensor, keys: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with in-batch negatives: row i of ``queries`` belongs with row i of
    ``keys``. Both are L2-normalised here."""
    logits = logit_scale * F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    labels = torch.arange(len(queries), device=queries.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def fusion_contrastive_loss(
    fused: torch.Tensor,
    target_embedding: torch.Tensor,
    logit_scale: torch.Tensor,
    source_embedding: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE of fusion embeddings against target embeddings; with ``source_embedding``,
    FPDM's source-enhanced batch: (source, source) pairs are appended to queries and keys."""
    if source_embedding is not None:
        source_embedding = F.normalize(source_embedding, dim=-1)
        fused = torch.cat([fused, source_embedding])
        target_embedding = torch.cat([target_embedding, source_embedding])
    return info_nce_loss(fused, target_embedding, logit_scale)


def retrieval_hits(queries: torch.Tensor, keys: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, int]:
    """How many queries rank their own key (same row) within the top k of all keys, per k."""
    similarity = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    true_score = similarity.diagonal().unsqueeze(1)
    # Rank = number of keys scoring strictly higher than the true one; ties count in its favour.
    rank = (similarity > true_score).sum(dim=1)
    return {k: int((rank < k).sum()) for k in ks}

"""The reference path: the source photo's features join the denoiser's self-attention.

As the ReferenceNet of AnimateAnyone / SignViP and TruePose's SourceNet do, but with the
denoiser's own weights: the UNet runs once on the clean source sample (timestep 0) and
every self-attention layer keeps its input, the *reference bank*; when the UNet then
denoises a target frame, each self-attention layer attends over its own tokens and the
bank's tokens of the same layer (keys and values concatenated). Garment pattern, face and
colours thus reach the frame at every level, spatially, instead of through a few global
tokens. The bank is computed once per video and only indexed per frame.

:func:`install_reference_attention` swaps the UNet's attention processors for
:class:`ReferenceAttnProcessor`, which behaves exactly like diffusers' default processor
unless a :class:`ReferenceState` is passed through ``cross_attention_kwargs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0

# The key added to UNet cross_attention_kwargs.
KWARG = "reference"


@dataclass
class ReferenceState:
    """What the processors read or write during one UNet call.

    ``mode="write"``: every self-attention layer stores its input (R, N, C) in ``bank``
    under its name. ``mode="read"``: row ``b`` of the batch attends to ``bank[name][rows[b]]``
    too, unless ``keep[b]`` is False (the reference dropped, for condition dropout and the
    unconditional guidance mode)."""

    mode: str
    bank: dict[str, torch.Tensor] = field(default_factory=dict)
    rows: torch.Tensor | None = None
    keep: torch.Tensor | None = None

    def select(self, index: torch.Tensor) -> "ReferenceState":
        """The state of the batch rows ``index`` (rows may repeat)."""
        return ReferenceState("read", self.bank, self.rows[index], None if self.keep is None else self.keep[index])

    def masked(self, keep: torch.Tensor) -> "ReferenceState":
        combined = keep if self.keep is None else self.keep & keep
        return ReferenceState("read", self.bank, self.rows, combined)

    @staticmethod
    def concat(states: list["ReferenceState"]) -> "ReferenceState":
        keeps = [s.keep if s.keep is not None else torch.ones_like(s.rows, dtype=torch.bool) for s in states]
        return ReferenceState("read", states[0].bank, torch.cat([s.rows for s in states]), torch.cat(keeps))


class ReferenceAttnProcessor:
    """diffusers' scaled-dot-product processor, with the reference bank joined to the keys
    and values of self-attention when a :class:`ReferenceState` is given."""

    def __init__(self, name: str):
        self.name = name
        self.inner = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 reference: ReferenceState | None = None, **kwargs):
        if reference is None or attn.is_cross_attention:
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if reference.mode == "write":
            reference.bank[self.name] = hidden_states
            return self.inner(attn, hidden_states, None, attention_mask, temb)
        bank = reference.bank[self.name][reference.rows].to(hidden_states.dtype)
        context = torch.cat([hidden_states, bank], dim=1)
        mask = None
        if reference.keep is not None and not bool(reference.keep.all()):
            mask = torch.zeros(len(hidden_states), 1, context.shape[1], dtype=hidden_states.dtype, device=hidden_states.device)
            mask[~reference.keep.to(mask.device), :, hidden_states.shape[1]:] = torch.finfo(hidden_states.dtype).min
        return self.inner(attn, hidden_states, context, mask, temb)


def install_reference_attention(unet: UNet2DConditionModel) -> None:
    """Give every attention layer of ``unet`` a :class:`ReferenceAttnProcessor` (no weights
    change: without a ReferenceState the UNet computes exactly what it did)."""
    unet.set_attn_processor({name: ReferenceAttnProcessor(name) for name in unet.attn_processors})


def has_reference_attention(unet: UNet2DConditionModel) -> bool:
    return any(isinstance(p, ReferenceAttnProcessor) for p in unet.attn_processors.values())


def self_attention_layers(unet: UNet2DConditionModel) -> list[str]:
    """Names of the processors whose layer is a self-attention (the ones that read the bank)."""
    names = []
    for name, module in unet.named_modules():
        if hasattr(module, "processor") and not getattr(module, "is_cross_attention", True):
            names.append(f"{name}.processor")
    return names

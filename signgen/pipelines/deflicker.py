"""Deflickering a rendered video: an edge-preserving filter over time.

Frames drawn one by one (or window by window) differ a little where the reference does not
change at all: the diffusion model's own noise in the pixels it draws, a warped texture
shimmering with its keypoints. :func:`deflicker` averages each pixel with the same pixel in
nearby frames, weighted by their distance in time (a Gaussian of ``sigma`` frames) and by
how alike the two frames look around that pixel (a Gaussian of :data:`RANGE_SIGMA` on the
difference of the frames blurred over :data:`GUIDE_BLUR` pixels): a pixel that only shimmers
is averaged over time, a pixel that something of a clearly other colour crosses is not, so
that the motion keeps its edges (a temporal bilateral filter, with the blurred frames as
guide so that the noise being removed does not decide the weights). Moving arms and hands
are left out altogether (``moving_limbs``): before a face or a garment of about their own colour the
range weight alone lets a moving hand fade into a ghost (seen, and rewarded by the metrics:
docs/temporal.md). It costs a few milliseconds per frame at the model's resolution. Measured
in docs/temporal.md ("Deflickering").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from signgen.errors import SigngenError

# How unalike two frames may look around a pixel before they are no longer averaged there:
# 24 of 255 grey levels (mean over the channels), on frames in [-1, 1].
RANGE_SIGMA = 24 / 127.5
# The guide is the frames box-blurred over this many model pixels (odd).
GUIDE_BLUR = 3


def filter_reach(sigma: float) -> int:
    """How many frames either side the filter of ``sigma`` looks at (two sigmas)."""
    return int(math.ceil(2 * sigma))


def deflicker(frames: torch.Tensor, sigma: float, moving_limbs: torch.Tensor | None = None, range_sigma: float = RANGE_SIGMA,
              guide_blur: int = GUIDE_BLUR) -> torch.Tensor:
    """``frames`` (T, C, H, W), values in [-1, 1], filtered over time (see the module
    docstring); ``sigma`` 0 returns them unchanged. ``moving_limbs`` (T, H, W) bool: pixels of
    each frame that are neither averaged with other frames nor lent to them (the moving
    arms and hands, :func:`signgen.poses.warp.limb_regions`: a hand before a face or a
    sleeve before the torso differs from them by less than the range weight can tell, and
    would turn into a ghost). Frames beyond the video's ends do not count: the weights are
    normalised over the frames there are, no edge frame is repeated to fill the reach."""
    if frames.ndim != 4:
        raise SigngenError(f"deflicker takes frames (T, C, H, W), got shape {tuple(frames.shape)}")
    keep = None
    if moving_limbs is not None:
        keep = torch.as_tensor(moving_limbs, dtype=torch.bool, device=frames.device)
        if keep.shape != (frames.shape[0], *frames.shape[2:]):
            raise SigngenError(f"deflicker: moving_limbs must be (frames, height, width) {(frames.shape[0], *frames.shape[2:])}, "
                               f"got {tuple(keep.shape)}")
        keep = keep[:, None]
    if sigma == 0 or len(frames) < 2:
        return frames
    reach = min(filter_reach(sigma), len(frames) - 1)
    dtype, frames = frames.dtype, frames.float()
    guide = F.avg_pool2d(frames, guide_blur, stride=1, padding=guide_blur // 2, count_include_pad=False)
    total = frames.clone()  # the frame itself, weight 1
    weights = torch.ones_like(frames[:, :1])
    for shift in range(1, reach + 1):
        ratio = shift / sigma
        closeness = math.exp(-0.5 * ratio * ratio)  # not ratio ** 2: that raises where a tiny sigma overflows it
        # The pairs (t, t + shift): each pair's weight serves both of its frames.
        difference = (guide[shift:] - guide[:-shift]).abs().mean(dim=1, keepdim=True)
        weight = closeness * torch.exp(-0.5 * (difference / range_sigma) ** 2)
        if keep is not None:
            weight = weight.masked_fill(keep[shift:] | keep[:-shift], 0.0)
        total[:-shift] += weight * frames[shift:]
        weights[:-shift] += weight
        total[shift:] += weight * frames[:-shift]
        weights[shift:] += weight
    return (total / weights).to(dtype)

"""Videos of any length: denoising in overlapping windows, blended at every step.

The temporal adapter sees ``F`` frames at once (``F`` = the training clip length). A longer
video is covered by windows of ``F`` frames that overlap by at least ``O`` frames; at each
denoising step the model predicts every window, and each frame's prediction is the
weighted mean of the windows that hold it. The weights ramp linearly across each overlap
(1 in a window's own frames, towards 0 where the neighbour takes over) and are normalised
to sum to 1 at every frame, so no seam shows and every frame is denoised exactly once per
step by one scheduler call over the whole video. Blending the model prediction rather
than the latents keeps multistep schedulers (DPM-Solver++, UniPC) correct: their history
is that of the whole video.

Conditions stay outside this module: the caller's ``predict(sample, frame_index,
num_frames)`` receives the noisy frames of one or more windows, ``(n * F, C, H, W)`` with
each window's frames contiguous, and ``frame_index`` (the video frame of each row) to
gather per-frame conditions (pose maps, fusion embeddings). Whole-video conditions, the
appearance tokens above all, are computed once per video by the caller and only repeated.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from signgen.errors import SigngenError

WindowPredictor = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def plan_windows(num_frames: int, window_size: int, overlap: int) -> list[range]:
    """Windows of ``window_size`` frames, each overlapping the next by at least ``overlap``,
    together covering ``range(num_frames)``.

    Windows start every ``window_size - overlap`` frames; the last one is moved back to end
    at the last frame (its overlap grows) rather than run short, so the adapter always sees
    the clip length it was trained on. A video no longer than a window is one window.
    """
    if num_frames < 1:
        raise SigngenError("a video needs at least one frame")
    if window_size < 1:
        raise SigngenError(f"window size must be at least 1 frame, not {window_size}")
    if not 0 <= overlap < window_size:
        raise SigngenError(f"window overlap must be at least 0 and less than the window size {window_size}, not {overlap}")
    if num_frames <= window_size:
        return [range(num_frames)]
    stride = window_size - overlap
    starts = list(range(0, num_frames - window_size, stride)) + [num_frames - window_size]
    return [range(start, start + window_size) for start in starts]


def blend_weights(windows: Sequence[range], num_frames: int) -> torch.Tensor:
    """``(len(windows), num_frames)`` float64 weights: zero outside a window, a linear ramp
    across each overlap with a neighbour, each column summing to 1."""
    weights = torch.zeros(len(windows), num_frames, dtype=torch.float64)
    for k, window in enumerate(windows):
        ramp = torch.ones(len(window), dtype=torch.float64)
        if k > 0:
            shared = windows[k - 1].stop - window.start
            if shared > 0:
                ramp[:shared] = torch.minimum(ramp[:shared], torch.arange(1, shared + 1) / (shared + 1))
        if k + 1 < len(windows):
            shared = window.stop - windows[k + 1].start
            if shared > 0:
                ramp[-shared:] = torch.minimum(ramp[-shared:], torch.arange(shared, 0, -1) / (shared + 1))
        weights[k, window.start : window.stop] = ramp
    coverage = weights.sum(dim=0)
    if (coverage == 0).any():
        missing = (coverage == 0).nonzero().flatten().tolist()
        raise SigngenError(f"windows leave frames {missing[:10]} uncovered")
    return weights / coverage


class WindowedPrediction:
    """The model prediction for a whole video, assembled from overlapping windows.

    Call it with the noisy video ``(T, C, H, W)``; it calls ``predict`` on batches of up to
    ``windows_per_batch`` windows and returns the blended prediction, shape of the input.
    """

    def __init__(
        self,
        predict: WindowPredictor,
        num_frames: int,
        window_size: int,
        overlap: int,
        windows_per_batch: int = 1,
    ):
        if windows_per_batch < 1:
            raise SigngenError(f"windows per batch must be at least 1, not {windows_per_batch}")
        self.predict = predict
        self.num_frames = num_frames
        self.windows = plan_windows(num_frames, window_size, overlap)
        self.weights = blend_weights(self.windows, num_frames)
        self.windows_per_batch = windows_per_batch

    def __call__(self, sample: torch.Tensor) -> torch.Tensor:
        if sample.shape[0] != self.num_frames:
            raise ValueError(f"expected {self.num_frames} frames, got {sample.shape[0]}")
        blended = torch.zeros_like(sample, dtype=torch.float32)
        weights = self.weights.to(device=sample.device, dtype=torch.float32)
        for first in range(0, len(self.windows), self.windows_per_batch):
            batch = self.windows[first : first + self.windows_per_batch]
            frame_index = torch.tensor([f for window in batch for f in window], device=sample.device)
            prediction = self.predict(sample[frame_index], frame_index, len(batch[0])).float()
            window_weights = torch.cat([weights[first + k, window.start : window.stop] for k, window in enumerate(batch)])
            blended.index_add_(0, frame_index, prediction * window_weights.view(-1, *[1] * (sample.dim() - 1)))
        return blended.to(sample.dtype)

"""Video quality metrics, each with its protocol named (DESIGN.md section 5).

Paired metrics compare a generated video with its reference, frame by frame; both are
uint8 RGB (T, H, W, 3) of one shape, and each metric returns the mean over frames (or
frame transitions; average over videos yourself):

- :func:`ssim_gray`: grayscale uint8, scikit-image defaults (7x7 uniform window, sample
  covariance), DisCo's convention.
- :func:`ssim_rgb`: each RGB channel in [0, 1], 11x11 Gaussian window with sigma 1.5,
  averaged over channels (the Wang et al. 2004 convention; FPDM's "86.4" is 0.864 x 100).
- :func:`psnr`: per frame in [0, 255]; identical frames count as 100 dB, as in DisCo,
  so that one perfect frame does not make the average infinite.
- :func:`temporal_difference_error`: how differently the two videos change from frame
  to frame; flicker and frozen motion both raise it. :func:`region_temporal_difference_error`
  restricts it to some pixels of each frame transition (the moving region,
  :func:`moving_masks`, or the hand boxes, :func:`box_masks`), so that a still background
  cannot hide flickering hands; :func:`temporal_difference_map` gives it per transition
  and pixel (for window seams against window insides).
- :func:`region_ssim` and :func:`region_psnr`: the same inside boxes, one list of
  ``(x0, y0, x1, y1)`` boxes per frame (SignViP's Hand-SSIM with the boxes of the driving
  pose's hands: ``signgen.poses.regions.hand_boxes``); :func:`moving_region_psnr`: PSNR over
  the pixels where the reference differs from the source frame (where the signer moved).

Distribution metrics (FID, FID-VID, FVD) compare feature statistics of all generated
videos with those of all reference videos: :class:`FrechetAccumulator` keeps running
statistics (no features held in memory, mergeable across processes) and
:func:`frechet_distance` compares two Gaussians. The feature extractors live in
:mod:`signgen.video.features`.
"""

from __future__ import annotations

import os

import numpy as np

from signgen.atomic import atomic_output
from signgen.errors import SigngenError

PSNR_OF_IDENTICAL_FRAMES = 100.0
# Boxes smaller than the SSIM window are grown to it (11 x 11 Gaussian, sigma 1.5).
MIN_REGION_SIDE = 11
# A pixel moved where any channel of the reference differs from the source by more than this.
MOVING_THRESHOLD = 12


def ssim_gray(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM over frames of the grayscale videos, scikit-image defaults, as DisCo.

    Grayscale is OpenCV's (0.299 R + 0.587 G + 0.114 B in fixed point), which DisCo uses.
    """
    import cv2
    from skimage.metrics import structural_similarity

    generated, reference = _check_pair(generated, reference)
    return float(
        np.mean(
            [
                structural_similarity(
                    cv2.cvtColor(gen, cv2.COLOR_RGB2GRAY), cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY)
                )
                for gen, ref in zip(generated, reference)
            ]
        )
    )


def ssim_rgb(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM over frames and RGB channels in [0, 1], 11x11 Gaussian window, sigma 1.5."""
    from skimage.metrics import structural_similarity

    generated, reference = _check_pair(generated, reference)
    return float(
        np.mean(
            [
                structural_similarity(
                    gen.astype(np.float64) / 255,
                    ref.astype(np.float64) / 255,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=1,
                    channel_axis=-1,
                )
                for gen, ref in zip(generated, reference)
            ]
        )
    )


def psnr(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean over frames of each frame's PSNR in [0, 255] (identical frames: 100 dB)."""
    generated, reference = _check_pair(generated, reference)
    difference = generated.astype(np.float64) - reference.astype(np.float64)
    mse = np.mean(difference**2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        per_frame = np.where(mse > 0, 10 * np.log10(255.0**2 / mse), PSNR_OF_IDENTICAL_FRAMES)
    return float(np.mean(np.minimum(per_frame, PSNR_OF_IDENTICAL_FRAMES)))


def temporal_difference_error(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean over frames and pixels of |(G[t+1] - G[t]) - (R[t+1] - R[t])| in [0, 255].

    Zero when the generated video changes exactly as the reference does (even with a
    constant colour offset); flicker and frozen motion both raise it.
    """
    return float(np.mean(temporal_difference_map(generated, reference), dtype=np.float64))


def temporal_difference_map(generated: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(T - 1, H, W) float32: |(G[t+1] - G[t]) - (R[t+1] - R[t])| averaged over the RGB
    channels, per frame transition and pixel."""
    generated, reference = _check_pair(generated, reference)
    if len(generated) < 2:
        raise SigngenError("temporal difference error needs videos of at least 2 frames")
    generated = generated.astype(np.float32)
    reference = reference.astype(np.float32)
    return np.abs(np.diff(generated, axis=0) - np.diff(reference, axis=0)).mean(axis=-1)


def region_temporal_difference_error(generated: np.ndarray, reference: np.ndarray, masks: np.ndarray) -> float | None:
    """Mean over frame transitions of the temporal difference error inside the pixels
    where ``masks[t]`` or ``masks[t + 1]`` holds (``masks``: (T, H, W) bool, one per
    frame, e.g. :func:`moving_masks` or :func:`box_masks`); transitions without such
    pixels are left out, None when none has any."""
    errors = temporal_difference_map(generated, reference)
    masks = np.asarray(masks, dtype=bool)
    if masks.shape != (len(errors) + 1, *errors.shape[1:]):
        raise SigngenError(f"region masks must be (frames, height, width) {(len(errors) + 1, *errors.shape[1:])}, got {masks.shape}")
    regions = masks[:-1] | masks[1:]
    scores = [float(error[region].mean(dtype=np.float64)) for error, region in zip(errors, regions) if region.any()]
    return float(np.mean(scores)) if scores else None


def moving_masks(reference: np.ndarray, source: np.ndarray, threshold: int = MOVING_THRESHOLD) -> np.ndarray:
    """(T, H, W) bool: where each reference frame differs from the ``source`` frame (uint8
    (H, W, 3)) by more than ``threshold`` in some channel, i.e. where the signer moved."""
    reference = np.asarray(reference)
    source = np.asarray(source)
    if source.shape != reference.shape[1:] or source.dtype != np.uint8:
        raise SigngenError(f"source frame must be uint8 {reference.shape[1:]}, got {source.dtype} {source.shape}")
    return (np.abs(reference.astype(np.int16) - source.astype(np.int16)) > threshold).any(axis=-1)


def box_masks(boxes: list, height: int, width: int) -> np.ndarray:
    """(T, H, W) bool: the boxes of each frame (``boxes[t]``, as for :func:`region_ssim`,
    grown the same way) as pixel masks."""
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for mask, frame_boxes in zip(masks, boxes):
        for box in frame_boxes:
            x0, y0, x1, y1 = _grown(box, width, height)
            mask[y0:y1, x0:x1] = True
    return masks


def region_ssim(generated: np.ndarray, reference: np.ndarray, boxes: list) -> float | None:
    """Mean of :func:`ssim_rgb` over every box of every frame (``boxes[t]``: the boxes of
    frame ``t``, pixel ``(x0, y0, x1, y1)``, end exclusive); None when no frame has a box."""
    scores = [ssim_rgb(gen[None], ref[None]) for gen, ref in _region_crops(generated, reference, boxes)]
    return float(np.mean(scores)) if scores else None


def region_psnr(generated: np.ndarray, reference: np.ndarray, boxes: list) -> float | None:
    """Mean of :func:`psnr` over every box of every frame; None when no frame has a box."""
    scores = [psnr(gen[None], ref[None]) for gen, ref in _region_crops(generated, reference, boxes)]
    return float(np.mean(scores)) if scores else None


def moving_region_psnr(generated: np.ndarray, reference: np.ndarray, source: np.ndarray,
                       threshold: int = MOVING_THRESHOLD) -> float | None:
    """Mean over frames of the PSNR over the pixels where the reference frame differs from
    the ``source`` frame (uint8 (H, W, 3)) by more than ``threshold`` in some channel;
    frames without such pixels are left out, None when no frame has any. Copying the source
    frame scores low here however still the rest of the picture is."""
    generated, reference = _check_pair(generated, reference)
    moving = moving_masks(reference, source, threshold)
    scores = []
    for gen, ref, mask in zip(generated, reference, moving):
        if mask.any():
            mse = np.mean((gen[mask].astype(np.float64) - ref[mask].astype(np.float64)) ** 2)
            scores.append(PSNR_OF_IDENTICAL_FRAMES if mse == 0 else min(10 * np.log10(255.0**2 / mse), PSNR_OF_IDENTICAL_FRAMES))
    return float(np.mean(scores)) if scores else None


def _region_crops(generated: np.ndarray, reference: np.ndarray, boxes: list):
    generated, reference = _check_pair(generated, reference)
    if len(boxes) != len(generated):
        raise SigngenError(f"{len(boxes)} frames of boxes for {len(generated)} frames")
    height, width = generated.shape[1:3]
    for gen, ref, frame_boxes in zip(generated, reference, boxes):
        for box in frame_boxes:
            x0, y0, x1, y1 = _grown(box, width, height)
            if x1 > x0 and y1 > y0:
                yield gen[y0:y1, x0:x1], ref[y0:y1, x0:x1]


def _grown(box, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` clipped to the frame, grown about its centre to at least MIN_REGION_SIDE."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side_x, side_y = max(x1 - x0, MIN_REGION_SIDE), max(y1 - y0, MIN_REGION_SIDE)
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(np.clip(round(centre_x - side_x / 2), 0, max(width - MIN_REGION_SIDE, 0)))
    top = int(np.clip(round(centre_y - side_y / 2), 0, max(height - MIN_REGION_SIDE, 0)))
    return left, top, min(width, left + int(round(side_x))), min(height, top + int(round(side_y)))


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``
    between N(mu1, sigma1) and N(mu2, sigma2).

    pytorch-fid takes ``scipy.linalg.sqrtm(sigma1 @ sigma2)``; the same trace is taken here
    from the symmetric form: ``sigma1 sigma2`` is similar to the positive semi-definite
    ``sigma1^(1/2) sigma2 sigma1^(1/2)``, so the trace is the sum of the square roots of
    that matrix's eigenvalues. Two symmetric eigendecompositions are several times faster
    than sqrtm for 2048-d features, and give no imaginary parts and no NaN for the
    singular covariances of fewer samples than dimensions (round-off negatives clip to 0).
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise SigngenError(
            f"Fréchet distance of mismatched statistics: means {mu1.shape} and {mu2.shape}, "
            f"covariances {sigma1.shape} and {sigma2.shape}"
        )
    eigenvalues, eigenvectors = np.linalg.eigh(sigma1)
    sqrt_sigma1 = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))) @ eigenvectors.T
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    trace_sqrt_product = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product)


class FrechetAccumulator:
    """Running mean and covariance of feature vectors, in float64.

    Batches are folded in with Chan et al.'s pairwise update (centred scatter matrices),
    which stays accurate where the raw sum of squares would cancel; the same update merges
    accumulators from other processes or shards. ``save``/``load`` use a pickle-free .npz,
    so reference statistics of a test split can be computed once and reused.
    """

    def __init__(self, num_features: int):
        self.num_features = num_features
        self.num_samples = 0
        self._mean = np.zeros(num_features)
        self._scatter = np.zeros((num_features, num_features))  # sum of (x - mean)(x - mean)^T

    def update(self, features: np.ndarray) -> None:
        """Add a batch of feature vectors (N, num_features)."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise SigngenError(f"expected features of shape (N, {self.num_features}), got {features.shape}")
        if len(features) == 0:
            return
        batch_mean = features.mean(axis=0)
        centred = features - batch_mean
        self._combine(len(features), batch_mean, centred.T @ centred)

    def merge(self, other: "FrechetAccumulator") -> None:
        """Fold in another accumulator's samples (e.g. from another process)."""
        if other.num_features != self.num_features:
            raise SigngenError(f"cannot merge {other.num_features}-d statistics into {self.num_features}-d ones")
        if other.num_samples:
            self._combine(other.num_samples, other._mean, other._scatter)

    def _combine(self, count: int, mean: np.ndarray, scatter: np.ndarray) -> None:
        total = self.num_samples + count
        delta = mean - self._mean
        self._scatter = self._scatter + scatter + np.outer(delta, delta) * (self.num_samples * count / total)
        self._mean = self._mean + delta * (count / total)
        self.num_samples = total

    @property
    def mean(self) -> np.ndarray:
        if self.num_samples == 0:
            raise SigngenError("no features accumulated yet")
        return self._mean.copy()

    @property
    def covariance(self) -> np.ndarray:
        """Unbiased sample covariance (divides by N - 1, as numpy.cov)."""
        if self.num_samples < 2:
            raise SigngenError(f"a covariance needs at least 2 samples, got {self.num_samples}")
        return self._scatter / (self.num_samples - 1)

    def distance(self, other: "FrechetAccumulator") -> float:
        return frechet_distance(self.mean, self.covariance, other.mean, other.covariance)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The exact running state, for storing several accumulators in one file."""
        return {"num_samples": np.asarray(self.num_samples), "mean": self._mean, "scatter": self._scatter}

    @classmethod
    def from_arrays(cls, arrays) -> "FrechetAccumulator":
        """The inverse of :meth:`to_arrays` (any mapping of those three names, e.g. an open .npz)."""
        accumulator = cls(int(arrays["mean"].shape[0]))
        accumulator.num_samples = int(arrays["num_samples"])
        accumulator._mean = np.asarray(arrays["mean"], dtype=np.float64)
        accumulator._scatter = np.asarray(arrays["scatter"], dtype=np.float64)
        return accumulator

    def save(self, path: str | os.PathLike) -> None:
        with atomic_output(path) as tmp, open(tmp, "wb") as file:
            np.savez(file, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FrechetAccumulator":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.from_arrays(data)
        except (OSError, KeyError, ValueError) as error:
            raise SigngenError(f"cannot read feature statistics {path}: {error}") from None


def _check_pair(generated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    generated, reference = np.asarray(generated), np.asarray(reference)
    for name, video in (("generated", generated), ("reference", reference)):
        if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8 or 0 in video.shape:
            raise SigngenError(f"{name} video must be non-empty uint8 (T, H, W, 3), got {video.dtype} {video.shape}")
    if generated.shape != reference.shape:
        raise SigngenError(
            f"generated video {generated.shape} and reference {reference.shape} differ in shape; "
            "resize or trim one of them first"
        )
    return generated, reference

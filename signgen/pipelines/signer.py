"""The signer photo's geometry in a render: its encoding and where the driving pose meets it.

A render reads the photo once (:func:`encode_signer`: the appearance tokens; for v2 models
also the photo at the model's resolution, its pose there and its reference features), puts
the driving pose where the photo's signer stands (:func:`place_at_signer`), warps the photo
to every frame of it (:func:`coarse_images`) and knows where its arms and hands move
(:func:`limb_regions`, which the deflicker filter leaves alone). Torso and head keypoints
are steadied over time (``steady_torso``, :func:`signgen.poses.warp.steady_torso`) for both,
so that the warp and the regions agree. Reading and fitting the photo itself is
:mod:`signgen.pipelines.signer_image`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.models.encoders import EncoderOutput
from signgen.models.frame_model import FrameModel
from signgen.models.reference import ReferenceState
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE, SignerPhoto, photo_keypoints, signer_photo


@dataclass
class SignerEncoding:
    """A signer photo as a pipeline renders from it, computed once: the appearance tokens;
    for v2 models also the photo at the model's resolution, its pose there (``keypoints``:
    xy (178, 2) in model pixels and confidence (178,)) and its reference features."""

    appearance: EncoderOutput
    photo: SignerPhoto | None = None
    keypoints: tuple[np.ndarray, np.ndarray] | None = None
    reference: ReferenceState | None = None
    fit: str = "pad"


@dataclass
class WarpSource:
    """The photo as the warp moves it at one frame size: ``pixels`` uint8 RGB (H, W, 3) and
    its keypoints there, ``xy`` (178, 2) and ``confidence`` (178,)."""

    pixels: np.ndarray
    xy: np.ndarray
    confidence: np.ndarray


def warp_source(encoding: SignerEncoding, size: tuple[int, int]) -> WarpSource:
    """The photo of ``encoding`` fitted to ``size`` (H, W) as it was to the model's resolution
    (same fit, same placement rule), with its keypoints carried along."""
    xy, confidence = encoding.keypoints
    photo = encoding.photo
    if tuple(size) != tuple(photo.image.shape[1:]):
        scale_x, scale_y, offset_x, offset_y = photo.placement
        photo_xy = (xy - [offset_x, offset_y]) / [scale_x, scale_y]
        photo = signer_photo(photo.pixels, size, fit=encoding.fit)
        xy = np.where(confidence[:, None] > 0, photo.to_model(photo_xy), 0.0)
    pixels = ((photo.image.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
    return WarpSource(pixels, xy, confidence)


def encode_signer(model: FrameModel, signer: Any = None, fit: str = "pad", signer_pose: Any = None) -> SignerEncoding:
    """Everything ``model`` reads of a signer photo (path, PIL image or uint8 array; ``None``
    = the bundled signer), computed once; an encoding is returned as it is.

    A v2 model also needs the photo's pose (:func:`signgen.pipelines.signer_image.photo_keypoints`:
    ``signer_pose`` a Pose, a ``.pose`` file or arrays; the bundled signer's ships with it;
    otherwise MediaPipe finds it) and computes the photo's reference features."""
    if isinstance(signer, SignerEncoding):
        return signer
    if isinstance(signer, EncoderOutput):
        if model.coarse_image or model.reference_attention:
            raise SigngenError("this model reads the signer photo itself, not only its encoding: pass the photo")
        return SignerEncoding(signer)
    if signer is None and signer_pose is None:
        signer_pose = DEFAULT_SIGNER_POSE
    photo = signer_photo(DEFAULT_SIGNER_PHOTO if signer is None else signer, model.resolution, fit=fit)
    image = photo.image[None].to(model.unet.device, model.unet.dtype)
    with torch.no_grad():
        appearance = model.encode_appearance(image)
        reference = model.reference_features(image, appearance) if model.reference_attention else None
    keypoints = photo_keypoints(photo, signer_pose) if model.coarse_image else None
    return SignerEncoding(appearance, photo, keypoints, reference, fit)


def model_pixels(pose: Pose, resolution: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``pose`` as (T, 178, 2) float64 pixels of a frame of ``resolution`` (H, W) and (T, 178) confidence."""
    from signgen.poses.holistic import pose_arrays

    xy, confidence = pose_arrays(pose)
    dims = pose.header.dimensions
    height, width = resolution
    return xy.astype(np.float64) * [width / dims.width, height / dims.height], confidence


def place_at_signer(pose: Pose, encoding: SignerEncoding, resolution: tuple[int, int]) -> Pose:
    """``pose`` moved and scaled so that its first seen shoulders lie on the photo's: the
    signer signs where the photo shows them standing."""
    from signgen.poses import skeleton
    from signgen.poses.holistic import pose_from_arrays

    xy, confidence = model_pixels(pose, resolution)
    shoulders = list(skeleton.SHOULDERS)
    seen = np.flatnonzero((confidence[:, shoulders] > 0).all(axis=1))
    if len(seen) == 0:
        return pose
    source = encoding.keypoints[0][shoulders]
    target = xy[seen[0]][shoulders]
    scale = np.linalg.norm(source[0] - source[1]) / max(np.linalg.norm(target[0] - target[1]), 1e-6)
    placed = (xy - target.mean(0)) * scale + source.mean(0)
    dims = pose.header.dimensions
    height, width = resolution
    return pose_from_arrays(placed * [dims.width / width, dims.height / height], confidence, float(pose.body.fps), dims.width, dims.height)


@dataclass
class DrivingGeometry:
    """The driving pose as a render reads it, computed once per video: its keypoints
    ``xy`` (T, 178, 2) and ``confidence`` (T, 178) in its own ``frame_size`` (W, H) (the
    pose maps), and ``steady_xy`` in model pixels with the torso and head steadied over time
    (the coarse images and the limb regions)."""

    xy: np.ndarray
    confidence: np.ndarray
    frame_size: tuple[int, int]
    steady_xy: np.ndarray
    resolution: tuple[int, int]

    def __len__(self) -> int:
        return len(self.xy)


def driving_geometry(pose: Pose, resolution: tuple[int, int], steady_torso: float = 0.0) -> DrivingGeometry:
    """The :class:`DrivingGeometry` of ``pose`` for a model of ``resolution`` (H, W)."""
    from signgen.poses.holistic import pose_arrays
    from signgen.poses.warp import steady_torso as steady

    xy, confidence = pose_arrays(pose)
    dims = pose.header.dimensions
    model_xy, _ = model_pixels(pose, resolution)
    return DrivingGeometry(xy, confidence, (int(dims.width), int(dims.height)), steady(model_xy, confidence, steady_torso),
                           tuple(resolution))


def pose_maps(geometry: DrivingGeometry, frames: slice, channels: int) -> torch.Tensor:
    """(T, C, H, W) pose maps of the ``frames`` of the driving pose at the model's resolution."""
    from signgen.poses.raster import rasterize_pose_map

    maps = torch.from_numpy(rasterize_pose_map(geometry.xy[frames], geometry.confidence[frames], geometry.frame_size,
                                               geometry.resolution))
    if maps.shape[1] != channels:
        raise SigngenError(f"pose maps have {maps.shape[1]} channels, the model reads {channels}")
    return maps


def photo_warper(source: WarpSource, method: str = "mesh", warp_hands: bool = True):
    """``(target_xy, target_confidence) -> CoarseImage``: the photo of ``source`` warped to a
    pose, part by part (``"parts"``, :func:`signgen.poses.warp.warp_to_pose`) or as one mesh
    bent by the bones (``"mesh"``, :class:`signgen.poses.mesh_warp.MeshWarp`, set up once).
    Without ``warp_hands``, every hand the target shows is marked uncovered (its hull, grown
    as the warp grows a hand's): the frame model and the hand stage draw it, not the photo's
    hand bent into another handshape."""
    if method == "mesh":
        from signgen.poses.mesh_warp import MeshWarp

        warp = MeshWarp(source.pixels, source.xy, source.confidence).warp
    else:
        from signgen.poses.warp import warp_to_pose

        warp = functools.partial(warp_to_pose, source.pixels, source.xy, source.confidence)
    return warp if warp_hands else functools.partial(hands_uncovered, warp)


def hands_uncovered(warp, target_xy: np.ndarray, target_confidence: np.ndarray):
    """``warp``'s coarse image of the target pose with the hull of each hand it shows marked
    uncovered (see :func:`photo_warper`)."""
    from signgen.poses.warp import HAND_MARGIN, HAND_POINTS, CoarseImage, hull_mask, shoulder_width

    coarse = warp(target_xy, target_confidence)
    size = coarse.uncovered.shape
    seen = np.asarray(target_confidence) > 0
    unit = shoulder_width(target_xy, seen, size[1])
    hands = np.zeros(size, bool)
    for points in HAND_POINTS.values():
        if seen[points].all():
            hands |= hull_mask(size, target_xy[points], HAND_MARGIN * unit) > 0
    background = None if coarse.background is None else coarse.background & ~hands
    return CoarseImage(image=coarse.image, uncovered=coarse.uncovered | hands, background=background)


def coarse_images(warper, geometry: DrivingGeometry, frames: slice = slice(None),
                  keep_background: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The photo warped by ``warper`` (:func:`photo_warper`, at the geometry's resolution) to
    the ``frames`` of the driving pose (placed in the photo's frame): images (T, 3, H, W) in
    [-1, 1] and uncovered masks (T, 1, H, W). ``keep_background``: the background the person
    left (:class:`signgen.poses.warp.CoarseImage`'s ``background``, where the warp tells it)
    counts as covered: for composing a frame, not as a model's condition, which was trained
    with it uncovered."""
    xy, confidence = geometry.steady_xy[frames], geometry.confidence[frames]
    warped = [warper(xy[t], confidence[t]) for t in range(len(xy))]
    images = torch.from_numpy(np.stack([w.image for w in warped])).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    uncovered = [w.uncovered & ~w.background if keep_background and w.background is not None else w.uncovered for w in warped]
    return images, torch.from_numpy(np.stack(uncovered)[:, None].astype(np.float32))


def limb_regions(geometry: DrivingGeometry, deflicker: float, frames: slice = slice(None)) -> torch.Tensor:
    """(T, H, W) bool: the arms and hands of the ``frames`` of the driving pose that move
    within the reach of a deflicker filter of width ``deflicker``
    (:func:`signgen.poses.warp.limb_regions`, on the steadied keypoints as the coarse images),
    which deflickering leaves alone. Only the frames within the reach are read."""
    from signgen.pipelines.deflicker import filter_reach
    from signgen.poses.warp import limb_regions as regions

    reach = filter_reach(deflicker)
    start, stop, _ = frames.indices(len(geometry))
    first, last = max(0, start - reach), min(len(geometry), stop + reach)
    found = regions(geometry.steady_xy[first:last], geometry.confidence[first:last], geometry.resolution, reach=reach)
    return torch.from_numpy(found[start - first : stop - first])

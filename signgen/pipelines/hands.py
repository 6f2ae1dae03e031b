"""The hand stage of a render (issue #25): every hand the driving pose shows, redrawn in a
square crop around its 21 keypoints by the hand model (:mod:`signgen.models.hands`) and
blended back into the frame with a feathered mask.

:func:`photo_hand_appearance` takes, once per video, what each hand looks like in the signer
photo; :func:`redraw_hands` then, for all visible hands of all frames as one batch, runs
DDIM from the caller's noise on the frames' own crops (the base) and pastes back only what the
model changed (:func:`signgen.poses.hands.paste_crop` with the base): an untrained model, or
a frame without a seen hand, leaves the frame exactly as it was, and every pixel outside a
hand's crop box is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler

from signgen.errors import SigngenError
from signgen.models.hands import HandModel
from signgen.poses import hands, skeleton

HAND_COUNT = 2
POINTS = 2 * hands.HAND_POINTS


@dataclass
class HandCrops:
    """The visible hands of a video: where each lies (frame, hand, box) and its inputs."""

    where: list[tuple[int, int, tuple[float, float, float]]]
    base: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    keypoints: torch.Tensor  # (N, 6, S, S)
    masks: list[np.ndarray]  # (S, S) paste weights
    hulls: list[np.ndarray | None]  # (S, S) the hands' feathered masks (poses.hands.hand_mask), where hide_hand or paste "hand" needs them


def photo_hand_appearance(photo: np.ndarray, photo_xy: np.ndarray, photo_conf: np.ndarray, crop_size: int = 64,
                          margin: float = 0.35) -> torch.Tensor:
    """What the left and right hand look like in the signer photo (H, W, 3) uint8 with its
    178-point pose (``photo_xy`` (178, 2) in photo pixels, ``photo_conf`` (178,)): (2, 3, S, S)
    float in [-1, 1], per hand its own crop when the photo shows it (all 21 points seen, most
    inside the photo), else the other hand's mirrored, else a patch of the face's skin colour,
    else grey (:func:`signgen.poses.hands.appearance_crop`)."""
    photo = np.asarray(photo)
    if photo.ndim != 3 or photo.shape[-1] != 3 or photo.dtype != np.uint8:
        raise SigngenError(f"the signer photo must be uint8 RGB (H, W, 3), got {photo.dtype} {photo.shape}")
    photo_xy, photo_conf = np.asarray(photo_xy, np.float64), np.asarray(photo_conf, np.float64)
    if photo_xy.shape != (skeleton.NUM_POINTS, 2) or photo_conf.shape != (skeleton.NUM_POINTS,):
        raise SigngenError(f"the photo's pose must be xy (178, 2) and confidence (178,), got {photo_xy.shape} and {photo_conf.shape}")
    crops = [hands.appearance_crop(photo, photo_xy, photo_conf, hand, crop_size, margin) for hand in range(HAND_COUNT)]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def check_inputs(frames: torch.Tensor, hand_xy, hand_seen, appearance: torch.Tensor, noise: torch.Tensor, size: int) -> None:
    """One SigngenError line for inputs of the wrong shape."""
    count = len(frames)
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise SigngenError(f"frames must be (T, 3, H, W), got {tuple(frames.shape)}")
    if tuple(np.shape(hand_xy)) not in ((count, POINTS, 2), (count, POINTS, 3)) or tuple(np.shape(hand_seen)) != (count, POINTS):
        raise SigngenError(f"hand_xy must be ({count}, {POINTS}, 2 or 3) and hand_seen ({count}, {POINTS}), "
                           f"got {tuple(np.shape(hand_xy))} and {tuple(np.shape(hand_seen))}")
    if tuple(appearance.shape) != (HAND_COUNT, 3, size, size):
        raise SigngenError(f"appearance must be ({HAND_COUNT}, 3, {size}, {size}) (photo_hand_appearance), got {tuple(appearance.shape)}")
    if tuple(noise.shape) != (count, HAND_COUNT, 3, size, size):
        raise SigngenError(f"noise must be ({count}, {HAND_COUNT}, 3, {size}, {size}), got {tuple(noise.shape)}")


def as_array(values, dtype) -> np.ndarray:
    return np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, dtype)


def hide(crop: np.ndarray, hull: np.ndarray) -> np.ndarray:
    """A float crop in [-1, 1] with its hand painted over (:func:`signgen.poses.hands.hide_hand`)."""
    as_uint8 = np.clip((crop + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    return hands.hide_hand(as_uint8, hull).astype(np.float32) / 127.5 - 1.0


def gather_crops(images: np.ndarray, hand_xy: np.ndarray, hand_seen: np.ndarray, model: HandModel,
                 hand_z: np.ndarray | None = None, face_xy: np.ndarray | None = None) -> HandCrops:
    """The crops of every hand whose 21 points are all seen in frames (T, H, W, 3) float32: box
    (the model's margin and min_side), base crop, keypoint map and paste mask (the model's
    ``paste`` region; for "crop", less the face's hull outside the hand's where ``face_xy``
    (T, K, 2), NaN where unseen, gives the face: :func:`kept_face`)."""
    size, margin, min_side = model.crop_size, float(model.config.margin), float(model.config.min_side)
    whole_crop = hands.edge_window(size) if model.config.paste == "crop" else None
    hide_hand = bool(model.config.hide_hand)
    height, width = images.shape[1:3]
    where, base, keypoints, masks, hulls = [], [], [], [], []
    for frame in range(len(images)):
        for hand in range(HAND_COUNT):
            points = slice(hand * hands.HAND_POINTS, (hand + 1) * hands.HAND_POINTS)
            xy, seen = hand_xy[frame, points], hand_seen[frame, points]
            if not (seen.all() and np.isfinite(xy).all()):
                continue
            box = hands.hand_crop_box(xy, seen, (width, height), margin, min_side * height)
            if box is None:
                continue
            in_crop = hands.to_crop(xy, box, size)
            z = None if hand_z is None else hand_z[frame, points]
            where.append((frame, hand, box))
            crop = hands.crop_region(images[frame], box, size)
            # The hull: what hide_hand paints over and the colour matching leaves, or the paste weight.
            hull = hands.hand_mask(in_crop, seen, size) if hide_hand or whole_crop is None or face_xy is not None else None
            base.append(hide(crop, hull) if hide_hand else crop)
            keypoints.append(hands.hand_keypoint_map(in_crop, seen, size, z))
            face = None if face_xy is None or whole_crop is None else kept_face(face_xy[frame], box, size)
            masks.append(hull if whole_crop is None else whole_crop if face is None else whole_crop * (1.0 - face * (1.0 - hull)))
            hulls.append(hull)
    if not where:
        return HandCrops([], torch.zeros(0, 3, size, size), torch.zeros(0, len(hands.HAND_PARTS), size, size), [], [])
    return HandCrops(where, torch.from_numpy(np.stack(base)).permute(0, 3, 1, 2), torch.from_numpy(np.stack(keypoints)), masks, hulls)


def face_points(xy: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """The face points (..., K, 2) of 178-point ``xy`` (..., 178, 2), NaN where
    ``confidence`` says unseen: the ``face_xy`` of :func:`redraw_hands`."""
    face = skeleton.FACE
    return np.where(np.asarray(confidence)[..., face, None] > 0, np.asarray(xy, np.float64)[..., face, :], np.nan)


def kept_face(face_xy: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray | None:
    """The feathered hull (S, S) of the face points ``face_xy`` (K, 2; NaN where unseen) in the
    crop ``box``, or None when fewer than ``MIN_FACE_POINTS`` are seen or none lies in it. A
    model that pastes its whole crop leaves the frame there, outside the hand: the face of
    the photo, mesh-warped, is sharper than what the model redraws around a hand (on a real
    photo, a blur of features it never saw)."""
    seen = np.isfinite(face_xy).all(axis=-1)
    if seen.sum() < hands.MIN_FACE_POINTS:
        return None
    face = hands.hand_mask(hands.to_crop(face_xy, box, size), seen, size, grow=0.0)
    return face if face.any() else None


def matched_to_surroundings(drawn: np.ndarray, base: np.ndarray, hull: np.ndarray, sigma_share: float = 0.125) -> np.ndarray:
    """``drawn`` (S, S, 3) with its colour around the hand pulled to ``base``'s (the crop the
    model drew from: the frame's, the hand painted over), the hand itself (``hull`` 1) left as
    drawn: the smooth difference of the two where the hull is below one half (Gaussian of
    ``sigma_share`` of the side, normalised by the weight it saw) added outside the hand.
    Off its training distribution (a real photo) the model's surroundings drift in colour and
    the crop shows as a square; its hand keeps its own shading."""
    import cv2

    outside = np.clip(1.0 - hull * 2.0, 0.0, 1.0).astype(np.float32)
    sigma = sigma_share * drawn.shape[0]

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    seen = blur(outside)
    offset = blur((base - drawn) * outside[..., None]) / np.maximum(seen, 1e-3)[..., None]
    offset *= np.clip(seen / 0.05, 0.0, 1.0)[..., None]
    return (drawn + offset * (1.0 - hull)[..., None]).astype(np.float32)


@torch.no_grad()
def denoise_crops(model: HandModel, crops: HandCrops, appearance: torch.Tensor, noise: torch.Tensor, num_steps: int) -> torch.Tensor:
    """DDIM (eta 0) from ``noise`` (N, 3, S, S): the redrawn crops (N, 3, S, S) in [-1, 1]."""
    device, dtype = model.device, model.dtype
    scheduler = DDIMScheduler.from_config(model.noise_scheduler.config)
    scheduler.set_timesteps(num_steps, device=device)
    base = crops.base.to(device, dtype)
    keypoints = crops.keypoints.to(device, dtype)
    appearance = appearance.to(device, dtype)
    sample = noise.to(device, dtype) * scheduler.init_noise_sigma
    for timestep in scheduler.timesteps:
        clean = model(sample, timestep.expand(len(sample)), keypoints, appearance, base)
        sample = scheduler.step(clean, timestep, sample).prev_sample
    return sample.clamp(-1.0, 1.0)


def redraw_hands(frames: torch.Tensor, hand_xy, hand_seen, hand_model: HandModel, appearance: torch.Tensor,
                 noise: torch.Tensor, num_steps: int = 10, face_xy=None) -> torch.Tensor:
    """``frames`` (T, 3, H, W) in [-1, 1] at output resolution with every hand redrawn whose 21
    points are all seen (``hand_xy`` (T, 42, 2) in those pixels, left hand then right, or
    (T, 42, 3) with depths that order the fingers; ``hand_seen`` (T, 42) bool),
    ``appearance`` (2, 3, S, S) from :func:`photo_hand_appearance`, ``noise`` (T, 2, 3, S, S)
    drawn by the caller (the same noise gives the same frames), ``num_steps`` DDIM steps; a
    model that draws the hand itself has its crop's colour around the hand matched to the
    frame's (:func:`matched_to_surroundings`); with ``face_xy`` (T, K, 2) in the same pixels,
    NaN where unseen, a model that pastes its whole crop leaves the face outside the hand as
    it was (:func:`kept_face`). A new tensor; frames without a seen hand come back as they
    were."""
    size = hand_model.crop_size
    check_inputs(frames, hand_xy, hand_seen, appearance, noise, size)
    if num_steps < 1:
        raise SigngenError(f"the hand stage needs at least 1 step, not {num_steps}")
    hand_xy, hand_seen = as_array(hand_xy, np.float64), as_array(hand_seen, bool)
    hand_xy, hand_z = hand_xy[..., :2], (hand_xy[..., 2] if hand_xy.shape[-1] == 3 else None)
    if face_xy is not None and (np.ndim(face_xy) != 3 or len(face_xy) != len(frames) or np.shape(face_xy)[-1] != 2):
        raise SigngenError(f"face_xy must be ({len(frames)}, K, 2), got {tuple(np.shape(face_xy))}")
    face_xy = None if face_xy is None else as_array(face_xy, np.float64)
    images = np.array(frames.detach().float().permute(0, 2, 3, 1).cpu().numpy(), dtype=np.float32, copy=True)  # never the caller's memory
    crops = gather_crops(images, hand_xy, hand_seen, hand_model, hand_z, face_xy)
    out = frames.clone()
    if not crops.where:
        return out
    chosen_noise = torch.stack([noise[frame, hand] for frame, hand, _ in crops.where])
    chosen_appearance = torch.stack([appearance[hand] for _, hand, _ in crops.where])
    drawn = denoise_crops(hand_model, crops, chosen_appearance, chosen_noise, num_steps).float().cpu()
    drawn = drawn.permute(0, 2, 3, 1).numpy()
    base = crops.base.permute(0, 2, 3, 1).numpy()
    hide_hand = bool(hand_model.config.hide_hand)
    if hide_hand:
        drawn = np.stack([matched_to_surroundings(d, b, h) for d, b, h in zip(drawn, base, crops.hulls)])
    touched = sorted({frame for frame, _, _ in crops.where})
    for index, (frame, _, box) in enumerate(crops.where):
        # A model that draws the hand itself replaces the crop; one that corrects it adds its change.
        kept = None if hide_hand else base[index]
        images[frame] = hands.paste_crop(images[frame], drawn[index], box, crops.masks[index], base=kept)
    for frame in touched:
        before = frames[frame].detach().float().cpu()
        after = torch.from_numpy(images[frame]).permute(2, 0, 1)
        # Only changed pixels are clamped to [-1, 1]: the rest stay exactly as they came.
        out[frame] = torch.where(after != before, after.clamp(-1.0, 1.0), before).to(out.device, out.dtype)
    return out

"""Pose fidelity: does a generated video show the pose that drove it?

MediaPipe Holistic is run again on the generated frames (the re-extraction protocol of
pose-guided generation papers) and its 178-point pose is compared with the driving pose,
frame by frame, separately for body (8 points), face (128 contour points) and hands
(2 x 21 points):

- **detection rate**: of the (frame, part) pairs where the driving pose shows the part,
  the fraction where MediaPipe finds it in the generated frame (each hand counts
  on its own, so "hands" pools left and right);
- **keypoint error**: the mean L2 distance between the re-extracted and the driving
  keypoints, over the points present in both, in pixels of the generated frame and in
  shoulder widths of the driving pose (its median shoulder width over the video), which
  makes numbers comparable across frame sizes.

Each result keeps its sums and counts, so that a corpus figure pools every (frame, part)
or (frame, point) pair alike (:func:`pool_pose_fidelity`) rather than averaging per-video
means.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass

import numpy as np
from pose_format import Pose

from signgen.errors import SigngenError
from signgen.poses import skeleton

# Each part is a list of units; a unit is detected or not as a whole in a frame (MediaPipe
# finds a hand, the face or the body as one), and its points are compared one by one.
PARTS: dict[str, list[slice]] = {
    "body": [skeleton.BODY],
    "face": [skeleton.FACE],
    "hands": [skeleton.LEFT_HAND, skeleton.RIGHT_HAND],
}


@dataclass(frozen=True)
class PartFidelity:
    """Sums and counts of one part over the frames of one or more videos."""

    expected: int  # (frame, unit) pairs the driving pose shows
    detected: int  # of those, the pairs MediaPipe found in the generated frames
    error_sum_px: float  # over (frame, point) pairs present in both poses
    error_count: int
    # The same in shoulder widths, over the videos whose driving pose shows both shoulders.
    error_sum_shoulder_widths: float
    error_count_shoulder_widths: int

    @property
    def detection_rate(self) -> float | None:
        return self.detected / self.expected if self.expected else None

    @property
    def error_px(self) -> float | None:
        return self.error_sum_px / self.error_count if self.error_count else None

    @property
    def error_shoulder_widths(self) -> float | None:
        count = self.error_count_shoulder_widths
        return self.error_sum_shoulder_widths / count if count else None

    def to_dict(self) -> dict:
        """Means and the sums behind them (JSON-ready)."""
        return {"detection_rate": self.detection_rate, "error_px": self.error_px,
                "error_shoulder_widths": self.error_shoulder_widths, **asdict(self)}

    @classmethod
    def from_dict(cls, values: dict) -> "PartFidelity":
        return cls(int(values["expected"]), int(values["detected"]), float(values["error_sum_px"]),
                   int(values["error_count"]), float(values["error_sum_shoulder_widths"]),
                   int(values["error_count_shoulder_widths"]))


def compare_poses(generated: Pose, driving: Pose, frame_size: tuple[int, int] | None = None) -> dict[str, PartFidelity]:
    """Per-part fidelity of ``generated`` (re-extracted, 178 points or a holistic pose)
    against ``driving``, frame by frame.

    Both are brought to pixels of ``frame_size`` (width, height), by default the generated
    pose's own frame; a driving pose drawn in another frame size is scaled to it, so that a
    pose at model resolution can be compared with frames upscaled from it.
    """
    from signgen.poses.holistic import pose_arrays, reduce_to_178
    from signgen.poses.transform import shoulder_reference

    generated, driving = reduce_to_178(generated), reduce_to_178(driving)
    if frame_size is None:
        frame_size = _frame_size(generated)
    gen_xy, gen_conf = _in_frame(*pose_arrays(generated), _frame_size(generated), frame_size)
    drv_xy, drv_conf = _in_frame(*pose_arrays(driving), _frame_size(driving), frame_size)
    if len(gen_xy) != len(drv_xy):
        raise SigngenError(f"pose fidelity needs one generated frame per driving frame, got {len(gen_xy)} and {len(drv_xy)}")
    try:
        shoulder_width = shoulder_reference(drv_xy.astype(np.float32), drv_conf)[1]
    except SigngenError:
        shoulder_width = None  # no shoulders in the driving pose: pixels only
    gen_present, drv_present = gen_conf > 0, drv_conf > 0
    distances = np.linalg.norm(gen_xy - drv_xy, axis=-1)
    parts = {}
    for part, units in PARTS.items():
        expected = detected = error_count = 0
        error_sum = 0.0
        for unit in units:
            shown = drv_present[:, unit].any(axis=1)
            found = gen_present[:, unit].any(axis=1)
            expected += int(shown.sum())
            detected += int((shown & found).sum())
            both = gen_present[:, unit] & drv_present[:, unit]
            error_sum += float(distances[:, unit][both].sum())
            error_count += int(both.sum())
        if shoulder_width is None:
            parts[part] = PartFidelity(expected, detected, error_sum, error_count, 0.0, 0)
        else:
            parts[part] = PartFidelity(expected, detected, error_sum, error_count, error_sum / shoulder_width, error_count)
    return parts


def measure_pose_fidelity(frames: np.ndarray, driving: Pose, fps: float = 25.0,
                          progress: bool = False) -> tuple[dict[str, PartFidelity], Pose]:
    """Run MediaPipe Holistic on generated uint8 frames (T, H, W, 3) and compare with the
    driving pose: per-part fidelity, and the re-extracted 178-point pose (for DTW-MJE)."""
    from signgen.poses.extract import extract_pose_from_frames
    from signgen.poses.holistic import reduce_to_178

    extracted = reduce_to_178(extract_pose_from_frames(frames, fps=fps, progress=progress))
    height, width = np.asarray(frames).shape[1:3]
    return compare_poses(extracted, driving, (width, height)), extracted


def pool_pose_fidelity(results) -> dict[str, PartFidelity]:
    """Pool per-video results (dicts of :class:`PartFidelity` or of their ``to_dict``)
    into one per part: every (frame, unit) and (frame, point) pair weighs the same."""
    fields = [field.name for field in dataclasses.fields(PartFidelity)]
    pooled = {part: dict.fromkeys(fields, 0) for part in PARTS}
    for result in results:
        for part in PARTS:
            value = result[part]
            value = value if isinstance(value, PartFidelity) else PartFidelity.from_dict(value)
            for name in fields:
                pooled[part][name] += getattr(value, name)
    return {part: PartFidelity(**sums) for part, sums in pooled.items()}


def _frame_size(pose: Pose) -> tuple[int, int]:
    dimensions = pose.header.dimensions
    return int(dimensions.width), int(dimensions.height)


def _in_frame(xy: np.ndarray, confidence: np.ndarray, size: tuple[int, int],
              target: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if min(size) <= 0:
        raise SigngenError(f"a pose with frame size {size[0]}x{size[1]} cannot be compared in pixels")
    scale = np.asarray(target, dtype=np.float64) / np.asarray(size, dtype=np.float64)
    return xy.astype(np.float64) * scale, confidence

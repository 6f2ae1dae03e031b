"""What a pose holds: frames, rate, size, components, and how often each was detected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pose_format import Pose


@dataclass(frozen=True)
class ComponentSummary:
    name: str
    points: int
    point_format: str
    detected: float  # fraction of frames where any of its points has confidence > 0; nan without frames


@dataclass(frozen=True)
class PoseSummary:
    frames: int
    fps: float
    width: int
    height: int
    components: tuple[ComponentSummary, ...]

    @property
    def duration(self) -> float:
        """Seconds: frames / fps."""
        return self.frames / self.fps if self.fps > 0 else float("nan")

    @property
    def points(self) -> int:
        return sum(c.points for c in self.components)

    def detected(self, name: str) -> float:
        """Detection rate of the component called ``name`` (e.g. ``LEFT_HAND_LANDMARKS``)."""
        return next(c.detected for c in self.components if c.name == name)


def summarize(pose: Pose) -> PoseSummary:
    """Summary of the first person in ``pose``."""
    confidence = np.asarray(pose.body.confidence)[:, 0] if len(pose.body.confidence) else np.zeros((0, 0))
    components = []
    start = 0
    for component in pose.header.components:
        stop = start + len(component.points)
        seen = (confidence[:, start:stop] > 0).any(axis=1)
        detected = float(seen.mean()) if len(seen) else float("nan")
        components.append(ComponentSummary(component.name, len(component.points), component.format, detected))
        start = stop
    dims = pose.header.dimensions
    return PoseSummary(frames=len(pose.body.data), fps=float(pose.body.fps), width=int(dims.width),
                       height=int(dims.height), components=tuple(components))

"""Shared fixtures: real pose clips from tests/data, the astronaut image, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA_DIR = Path(__file__).parent / "data"
FINGERSPELLING_DIR = DATA_DIR / "fingerspelling"
# Real MediaPipe Holistic clips (586 points, 500 x 500): see tests/data/fingerspelling/README.md
GSG_A = FINGERSPELLING_DIR / "gsg" / "fs-sts3c483cfcbfbbb68ca97f4cdf1150cd0b.pose"  # 22 frames, 30 fps
GSG_B = FINGERSPELLING_DIR / "gsg" / "fs-sts86d87f59bbff3a98936e97b0f0f78a4c.pose"  # 25 frames, 30 fps
GSG_C = FINGERSPELLING_DIR / "gsg" / "fs-stse3eb12642430816f0bc2f1524d69a299.pose"  # 26 frames, 30 fps
ASE_A = FINGERSPELLING_DIR / "ase" / "fs-stse28e9ac023b0e29ca0a3acc12dc46540.pose"  # 21 frames, 25 fps
CLIPS_30_FPS = [GSG_A, GSG_B, GSG_C]


@pytest.fixture
def gsg_pose_path() -> Path:
    return GSG_A


@pytest.fixture
def gsg_pose():
    from signgen.poses.io import read_pose

    return read_pose(GSG_A)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut photo, uint8 (512, 512, 3): one person, face and body visible."""
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_png(astronaut, tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("astronaut") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return path


@pytest.fixture(scope="session")
def astronaut_pose(astronaut_png):
    """MediaPipe Holistic on the astronaut, extracted once per test session."""
    from signgen.poses.extract import extract_pose

    return extract_pose(astronaut_png, progress=False)


@pytest.fixture
def truncated_pose_path(tmp_path) -> Path:
    """A real .pose file cut off in the middle of its body."""
    data = GSG_A.read_bytes()
    path = tmp_path / "truncated.pose"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def text_named_mp4(tmp_path) -> Path:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n")
    return path


@pytest.fixture
def zero_frame_mp4(tmp_path) -> Path:
    """A valid mp4 container whose H.264 stream never received a frame."""
    import av

    path = tmp_path / "empty.mp4"
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.mux(stream.encode())
    return path


@pytest.fixture
def empty_frame_folder(tmp_path) -> Path:
    """A PHOENIX-style frame folder with no frames in it."""
    path = tmp_path / "01April_2010_Thursday_heute-6694"
    path.mkdir()
    return path


@pytest.fixture
def file_as_folder(tmp_path) -> Path:
    """A regular file, to be used as an output folder: writing under it must fail, even as
    root (where a read-only folder would not stop a write)."""
    path = tmp_path / "not-a-folder"
    path.write_text("")
    return path

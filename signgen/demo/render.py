"""What one click of ``signgen demo`` does, without the web page: the inputs checked (the
demo's own limits first: a server takes uploads from anyone who reaches it), the render of
``signgen render`` (:class:`signgen.pipelines.pipeline.SignPipeline` and
:func:`signgen.pipelines.postprocess.write_render`), the video and the side-by-side video
written into a folder of this render only, and the figures of the pose.

Every refusal is a :class:`SigngenError` with the CLI's one-line message (an upload named
by its file name, never by the server's temporary path); nothing is written before the
inputs pass, and a failed render leaves no file behind.
"""

from __future__ import annotations

import html
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signgen.errors import SigngenError

MAX_GLOSS_CHARACTERS = 500
MAX_PHOTO_SIDE = 4096
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MARKDOWN_PUNCTUATION = set("\\`*_{}[]()#+-.!|~<>$")


@dataclass(frozen=True)
class DemoRequest:
    """One render as the page asks for it: ``glosses`` or an uploaded ``pose`` path, an
    uploaded ``photo`` path or None for the bundled signer, and the settings."""

    glosses: str = ""
    pose: str | None = None
    photo: str | None = None
    strength: float = 1.0
    seed: int = 0
    steps: int = 10
    deflicker: float = 4.0
    settings: dict[str, Any] = field(default_factory=dict)  # further RenderSettings fields


@dataclass(frozen=True)
class DemoResult:
    video: Path
    side_by_side: Path
    figures: dict[str, Any]


def _named(error: SigngenError, path: str) -> SigngenError:
    """``error`` with the upload's temporary path shown as its file name."""
    return SigngenError(str(error).replace(str(path), Path(path).name))


def check_upload(path: str | None, what: str, suffixes: tuple[str, ...], max_bytes: int) -> Path | None:
    """An uploaded file: present, of an accepted suffix, at most ``max_bytes`` long."""
    if path is None or str(path) == "":
        return None
    path = Path(path)
    if not path.is_file():
        raise SigngenError(f"{what} not found: {path.name}")
    if path.suffix.lower() not in suffixes:
        raise SigngenError(f"{what} {path.name} is not {' or '.join(suffixes)}")
    size = path.stat().st_size
    if size > max_bytes:
        raise SigngenError(f"{what} {path.name} is {size / 2**20:.1f} MB; the demo takes at most {max_bytes / 2**20:.0f} MB")
    return path


def check_photo(path: Path) -> Any:
    """The uploaded photo as a PIL image, its size refused before its pixels are decoded."""
    from PIL import Image

    from signgen.files import open_image

    def check_size(size: tuple[int, int]) -> None:
        if max(size) > MAX_PHOTO_SIDE:
            raise SigngenError(f"signer image {path.name} is {size[0]}x{size[1]} px; the demo takes at most "
                               f"{MAX_PHOTO_SIDE} px per side, please downscale it")

    try:
        with warnings.catch_warnings():  # PIL warns of a huge image at open; check_size refuses it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return open_image(path, "signer image", check_size=check_size)
    except SigngenError as error:
        raise _named(error, str(path)) from None


def check_request(request: DemoRequest, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> tuple[Any, Any]:
    """The request's pose path (or None) and photo (a PIL image, or None for the bundled
    signer), every limit checked; one SigngenError line for the first that fails."""
    glosses = (request.glosses or "").strip()
    if len(glosses) > MAX_GLOSS_CHARACTERS:
        raise SigngenError(f"the gloss text is {len(glosses)} characters long; the demo renders at most "
                           f"{MAX_GLOSS_CHARACTERS} (signgen render takes longer texts)")
    pose = check_upload(request.pose, "pose file", (".pose",), max_upload_bytes)
    if pose is None and not glosses:
        raise SigngenError("give glosses (e.g. H A L L O) or upload a .pose file")
    if pose is not None and glosses:
        raise SigngenError("give either glosses or a .pose file, not both")
    photo = check_upload(request.photo, "signer image", PHOTO_SUFFIXES, max_upload_bytes)
    return pose, (None if photo is None else check_photo(photo))


def fingerspelled(glosses: str) -> list[str]:
    """The glosses the bundled lexicon has no sign for (stitching spells them letter by letter)."""
    from signgen.poses.lexicon import default_lexicon
    from signgen.poses.stitch import parse_glosses

    lexicon = default_lexicon()
    return list(dict.fromkeys(g for g in parse_glosses(glosses) if lexicon.lookup(g, "gsg") is None))


def render_request(pipeline, request: DemoRequest, out_dir: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                   progress: bool = True) -> DemoResult:
    """Check ``request``, render it with ``pipeline`` and write ``video.mp4`` and
    ``side_by_side.mp4`` (pose | generated) into a new folder inside ``out_dir``."""
    from signgen.pipelines.postprocess import write_render

    started = time.perf_counter()
    pose, photo = check_request(request, max_upload_bytes)
    glosses = None if pose is not None else request.glosses.strip()
    try:
        result = pipeline(glosses=glosses, pose=pose, signer=photo, seed=request.seed, progress=progress,
                          strength=request.strength, num_steps=request.steps, deflicker=request.deflicker,
                          **request.settings)
    except SigngenError as error:
        raise error if pose is None else _named(error, str(pose)) from None
    folder = Path(tempfile.mkdtemp(prefix="render-", dir=out_dir))
    try:
        video = write_render(result, folder / "video.mp4")
        side = write_render(result, folder / "side_by_side.mp4", side_by_side=True)
    except BaseException:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        raise
    frames = len(result)
    figures = {"frames": frames, "seconds": round(frames / result.fps, 2), "fps": result.fps,
               "fingerspelled": fingerspelled(glosses) if glosses else [],
               "render_seconds": round(time.perf_counter() - started, 1)}
    return DemoResult(video, side, figures)


def markdown_text(text: str) -> str:
    """User text as literal Markdown: HTML escaped, Markdown's punctuation backslashed."""
    escaped = html.escape(str(text), quote=True)
    return "".join("\\" + char if char in MARKDOWN_PUNCTUATION else char for char in escaped)


def figures_markdown(figures: dict[str, Any]) -> str:
    """The figures of a render as the page shows them (the glosses, user text, escaped)."""
    spelled = ", ".join(markdown_text(gloss) for gloss in figures["fingerspelled"]) or "none"
    return (f"**{figures['frames']} frames**, {figures['seconds']:.2f} s at {figures['fps']:g} fps; "
            f"fingerspelled glosses: {spelled}; rendered in {figures['render_seconds']:.1f} s")


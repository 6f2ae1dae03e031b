"""The page of ``signgen demo`` (Gradio, the optional ``demo`` extra): glosses or a
``.pose`` upload, a photo upload or the bundled signer, strength / seed / steps / deflicker,
progress while rendering, the video and the side-by-side video, and the figures of the pose.

The page only collects inputs and shows results: :mod:`signgen.demo.render` checks and
renders. A refused input is the CLI's one-line message in the page; the server goes on
serving. Nothing is fetched from the network (system fonts, no analytics).
"""

from __future__ import annotations

import html
import math
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from signgen.config.common import MAX_SEED
from signgen.demo.render import DEFAULT_MAX_UPLOAD_BYTES, MAX_GLOSS_CHARACTERS, DemoRequest, figures_markdown, render_request
from signgen.errors import SigngenError, first_line

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
TITLE = "signgen demo"
INTRO = ("Render a signer signing glosses (space-separated, e.g. `H A L L O`; glosses missing from the bundled "
         "DGS lexicon are fingerspelled) or a `.pose` file, from a photo or the bundled cartoon signer.")


@dataclass(frozen=True)
class DemoOptions:
    model: Path | None = None  # None: the embedded pipeline
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    work_dir: Path | None = None  # None: a temporary folder, removed when the demo stops


def load_gradio():
    """The gradio module, or one line naming the extra that installs it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no call home from a local demo
    try:
        import gradio
    except ImportError:
        raise SigngenError("signgen demo needs Gradio: pip install 'signgen[demo]'") from None
    return gradio


def _number_input(value, label: str, low: float, high: float, whole: bool = False) -> float | int:
    """A figure of the page checked: a (whole) number in [low, high], else one SigngenError line."""
    try:
        number = value if isinstance(value, int) and not isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(number, float) and (not math.isfinite(number) or (whole and not number.is_integer())) \
            or not low <= number <= high:
        bounds = f"from {int(low)} to {int(high)}" if whole else f"from {low:g} to {high:g}"
        raise SigngenError(f"{label} must be {'a whole number' if whole else 'a number'} {bounds}")
    return int(number) if whole else float(number)


def demo_request(glosses, pose, photo, strength, seed, steps, deflicker) -> DemoRequest:
    """The page's inputs as a DemoRequest; an empty or out-of-range figure is one SigngenError line."""
    return DemoRequest(glosses=glosses or "", pose=pose or None, photo=photo or None,
                       strength=_number_input(strength, "strength", 0.0, 1.0),
                       seed=_number_input(seed, "the seed", 0, MAX_SEED, whole=True),
                       steps=_number_input(steps, "steps", 1, 50, whole=True),
                       deflicker=_number_input(deflicker, "deflicker", 0.0, 8.0))


def _render_handler(gr, pipeline, work_dir: Path, max_upload_bytes: int):
    def render(glosses, pose, photo, strength, seed, steps, deflicker, progress=gr.Progress(track_tqdm=True)):
        try:
            request = demo_request(glosses, pose, photo, strength, seed, steps, deflicker)
            result = render_request(pipeline, request, work_dir, max_upload_bytes)
        except SigngenError as error:
            raise gr.Error(html.escape(" ".join(str(error).split())), print_exception=False) from None
        return str(result.video), str(result.side_by_side), figures_markdown(result.figures)

    return render


def local_theme(gr):
    """Gradio's default theme in the system's fonts (its own are fetched from the network)."""
    return gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_app(pipeline, work_dir: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES):
    """The Gradio Blocks of the demo around a loaded ``pipeline``; renders go into ``work_dir``."""
    gr = load_gradio()
    settings = pipeline.settings
    with gr.Blocks(title=TITLE, analytics_enabled=False) as app:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column():
                glosses = gr.Textbox(label=f"glosses (at most {MAX_GLOSS_CHARACTERS} characters)", value="H A L L O",
                                     elem_id="glosses", lines=2)
                pose = gr.File(label=".pose file (instead of glosses)", file_types=[".pose"], type="filepath",
                               elem_id="pose")
                # a File, not an Image: Gradio hands over the upload's path undecoded, so that
                # check_photo refuses a non-image or a huge one before any pixel is decoded
                photo = gr.File(label="signer photo (empty: the bundled signer)", file_types=["image"], type="filepath",
                                elem_id="photo")
                strength = gr.Slider(0.0, 1.0, value=settings.strength, step=0.05, label="strength", elem_id="strength")
                seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                steps = gr.Slider(1, 50, value=settings.num_steps, step=1, label="steps", elem_id="steps")
                deflicker = gr.Slider(0.0, 8.0, value=settings.deflicker, step=0.5, label="deflicker", elem_id="deflicker")
                button = gr.Button("Render", variant="primary", elem_id="render")
            with gr.Column():
                video = gr.Video(label="video", elem_id="result-video", autoplay=True, loop=True)
                side = gr.Video(label="side by side (pose | generated)", elem_id="side-video", loop=True)
                figures = gr.Markdown(elem_id="figures")
        button.click(_render_handler(gr, pipeline, work_dir, max_upload_bytes),
                     inputs=[glosses, pose, photo, strength, seed, steps, deflicker], outputs=[video, side, figures],
                     concurrency_limit=1)
    return app


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(options: DemoOptions, block: bool = True):
    """Load the pipeline, start the server and (``block``) serve until interrupted; the
    temporary work folder is removed at the end. Returns the app when not blocking."""
    own_dir = options.work_dir is None
    work_dir = Path(tempfile.mkdtemp(prefix="signgen-demo-")) if own_dir else Path(options.work_dir)
    # Gradio's uploads and its copies of the results go there too, so that the demo writes
    # nothing outside its work folder (read when gradio is first imported).
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")
    try:
        gr = load_gradio()
        from signgen.pipelines.pipeline import load_pipeline

        pipeline = load_pipeline(options.model)  # a bad --model fails here, before the server starts
        app = build_app(pipeline, work_dir, options.max_upload_bytes)
    except BaseException:
        if own_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    print(f"renders and uploads go to {work_dir}" + (" (removed when the demo stops)" if own_dir else ""))
    if block:  # a service manager's SIGTERM stops the server as Ctrl-C does, and the work folder goes too
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        app.queue(default_concurrency_limit=1).launch(
            server_name=options.host, server_port=options.port, share=False, max_file_size=options.max_upload_bytes,
            allowed_paths=[str(work_dir)], prevent_thread_lock=not block, show_error=True, ssr_mode=False,
            quiet=False, inbrowser=False, theme=local_theme(gr), footer_links=[])
    except OSError as error:  # the port is taken, the host is not this machine's
        raise SigngenError(f"cannot serve on {options.host}:{options.port}: {first_line(error)}") from None
    finally:
        if block and own_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    return app

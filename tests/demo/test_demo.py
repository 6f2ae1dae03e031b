"""``signgen demo``: one request checked and rendered (signgen.demo.render), bad inputs
refused with the CLI's one-line messages and nothing written, and the page itself served
by the real command on a free loopback port, driven in a real browser (Debian's chromium
through Playwright), stopped at the end. Set SIGNGEN_SCREENSHOTS=DIR to keep a screenshot.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from signgen.demo.render import DemoRequest, check_request, render_request
from signgen.errors import SigngenError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pipeline(tiny_pipelines):
    from signgen.pipelines.pipeline import load_pipeline

    return load_pipeline(tiny_pipelines["frame_only"])


def refusal(pipeline, request: DemoRequest, out_dir: Path, **limits) -> str:
    with pytest.raises(SigngenError) as caught:
        render_request(pipeline, request, out_dir, progress=False, **limits)
    assert list(out_dir.iterdir()) == [], "a refused request wrote something"
    return str(caught.value)


def test_render_request_writes_the_video_the_side_by_side_and_the_figures(pipeline, tmp_path):
    from signgen.video.io import video_info

    result = render_request(pipeline, DemoRequest(glosses="HALLO A", steps=1, deflicker=0), tmp_path, progress=False)
    assert result.video.parent == result.side_by_side.parent and result.video.parent.parent == tmp_path
    video, side = video_info(result.video), video_info(result.side_by_side)
    assert video.num_frames == side.num_frames == result.figures["frames"] > 0
    assert side.width > video.width  # the skeleton beside the frames
    assert result.figures["seconds"] == pytest.approx(result.figures["frames"] / 25, abs=0.01)
    assert result.figures["fingerspelled"] == ["HALLO"]  # the bundled lexicon has letters only


def test_bad_inputs_are_the_clis_one_line_messages_and_write_nothing(pipeline, tmp_path, run_cli, cli_error_line):
    from PIL import Image

    out = tmp_path / "out"
    out.mkdir()
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("this is no picture", encoding="utf-8")
    message = refusal(pipeline, DemoRequest(glosses="H A", photo=str(not_an_image), steps=1), out)
    assert message == "signer image photo.png is not an image file (or an unsupported format)"
    assert str(tmp_path) not in message  # the upload's name, never the server's path

    huge = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)  # a small file of 10,000 x 10,000 pixels
    message = refusal(pipeline, DemoRequest(glosses="H A", photo=str(huge), steps=1), out)
    assert message.startswith("signer image huge.png is 10000x10000 px; the demo takes at most 4096 px per side")

    message = refusal(pipeline, DemoRequest(glosses="A" * 10_000), out)
    assert message.startswith("the gloss text is 10000 characters long; the demo renders at most 500")
    message = refusal(pipeline, DemoRequest(glosses="H A", photo=str(huge), steps=1), out, max_upload_bytes=1000)
    assert re.match(r"signer image huge\.png is [\d.]+ MB; the demo takes at most 0 MB", message)
    assert refusal(pipeline, DemoRequest(glosses=""), out) == "give glosses (e.g. H A L L O) or upload a .pose file"

    # the render's own refusals read as signgen render prints them
    for glosses in ("H @@", "H AΩ"):
        demo = refusal(pipeline, DemoRequest(glosses=glosses, steps=1), out)
        code, _, err = run_cli("render", "--gloss", glosses, "-o", tmp_path / "x.mp4")
        assert code == 2 and cli_error_line(err, only=False) == f"signgen: error: {demo}"
    assert not (tmp_path / "x.mp4").exists()


def test_page_inputs_are_checked_and_user_text_is_escaped():
    from signgen.demo.app import demo_request
    from signgen.demo.render import figures_markdown

    assert demo_request("H", None, "", 0.5, 3.0, 2, 0).seed == 3
    for seed in (None, "", 1.5, -1):
        with pytest.raises(SigngenError, match=r"^the seed must be a whole number from 0 to \d+$"):
            demo_request("H", None, None, 0.5, seed, 2, 0)
    with pytest.raises(SigngenError, match="^steps must be a whole number from 1 to 50$"):
        demo_request("H", None, None, 0.5, 0, None, 0)
    shown = figures_markdown({"frames": 3, "seconds": 0.12, "fps": 25, "render_seconds": 1.0,
                              "fingerspelled": ["<img src=x onerror=alert(1)>", "A_B*"]})
    assert "<img" not in shown and "&lt;img" in shown and "A\\_B\\*" in shown


def test_a_pose_upload_that_is_no_pose_is_named_by_its_file_name(pipeline, tmp_path):
    upload = tmp_path / "uploads" / "mine.pose"
    upload.parent.mkdir()
    upload.write_bytes(b"\x00not a pose file")
    out = tmp_path / "out"
    out.mkdir()
    message = refusal(pipeline, DemoRequest(pose=str(upload), steps=1), out)
    assert "mine.pose" in message and str(upload.parent) not in message
    with pytest.raises(SigngenError, match="either glosses or a .pose file"):
        check_request(DemoRequest(glosses="H", pose=str(upload)))


# ------------------------------------------------------------------ the page, in a browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tiny_pipelines, tmp_path):
    """``signgen demo`` on a free loopback port, as a user starts it; stopped (SIGTERM, as
    a service manager stops it) after the test, which must leave its work folder removed."""
    pytest.importorskip("gradio", reason="gradio is not installed (pip install 'signgen[demo]'): demo not served")
    port = free_port()
    log = tmp_path / "demo.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "signgen.cli.main", "demo", "--model", str(tiny_pipelines["frame_only"]),
                                    "--port", str(port), "--max-upload-mb", "0.05"], stdout=output, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"signgen demo exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"signgen demo did not answer: {log.read_text()}"
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("signgen demo did not stop on SIGTERM")
    work = re.search(r"renders and uploads go to (\S+)", log.read_text())
    assert work and not Path(work.group(1)).exists(), "the work folder outlived the demo"
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_demo_page_refuses_bad_inputs_then_renders_in_a_browser(server, browser, tmp_path):
    import numpy as np
    from PIL import Image

    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: problems.append(f"outside: {request.url}")
            if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 400 else None)
    page.goto(server)
    page.wait_for_selector("#glosses textarea")

    noise = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    photo = tmp_path / "noise.png"
    Image.fromarray(noise).save(photo)  # about 120 kB, over the server's 0.05 MB
    page.set_input_files("#photo input[type=file]", str(photo))
    page.get_by_text("exceed the maximum allowed size").first.wait_for(timeout=30_000)

    page.fill("#glosses textarea", "A" * 10_000)
    page.click("#render")
    page.get_by_text("the gloss text is 10000 characters long").first.wait_for(timeout=30_000)

    page.fill("#glosses textarea", "H A")
    page.fill("#seed input[type=number]", "")  # an emptied seed box: our line, not int(None)
    page.click("#render")
    page.get_by_text("the seed must be a whole number from 0 to").first.wait_for(timeout=30_000)
    page.fill("#seed input[type=number]", "0")
    page.fill("#steps input[type=number]", "2")
    page.press("#steps input[type=number]", "Enter")
    page.click("#render")
    page.wait_for_selector("#result-video video", timeout=120_000)
    page.wait_for_function("() => document.querySelector('#result-video video').readyState >= 2", timeout=30_000)
    assert page.locator("#side-video video").count() == 1
    assert re.search(r"\d+ frames, [\d.]+ s at 25 fps; fingerspelled glosses: none", page.inner_text("#figures"))
    if os.environ.get("SIGNGEN_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["SIGNGEN_SCREENSHOTS"]) / "demo_test.png"), full_page=True)

    # a text file named .png reaches check_photo undecoded: the CLI's line, never Gradio's
    # UnidentifiedImageError with the server's temporary path; and the server goes on serving
    fake = tmp_path / "fake.png"
    fake.write_text("this is no picture", encoding="utf-8")
    # Wait for the upload itself (how the page then shows the file name varies with load).
    with page.expect_response(lambda response: "/gradio_api/upload" in response.url and response.ok, timeout=90_000):
        page.set_input_files("#photo input[type=file]", str(fake))
    page.wait_for_timeout(1_000)
    page.click("#render")
    message = page.get_by_text("signer image fake.png is not an image file (or an unsupported format)").first
    message.wait_for(timeout=90_000)
    assert "UnidentifiedImageError" not in page.content() and "/gradio/" not in message.inner_text()
    page.close()
    with urllib.request.urlopen(server, timeout=10) as response:
        assert response.status == 200
    # The refused upload's progress is asked for and not found (HTTP 404, which the console
    # reports too, with "Response"): the only failures allowed
    refused = [p for p in problems if p.startswith("404 ") and "/gradio_api/upload_progress" in p]
    console = [p for p in problems if "status of 404" in p]
    others = [p for p in problems if p not in refused and p not in console and p != "Response"]
    assert others == [] and len(console) <= len(refused), problems

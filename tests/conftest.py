"""Shared fixtures: real pose clips from tests/data, the astronaut image, bad inputs, the
command line run in-process, and one factory for tiny models, pipelines and corpora.

Tests get these as fixtures (never by importing a helper module): ``tiny_frame_config``,
``tiny_frame_model``, ``tiny_adapter``, ``randomize``, ``sample_frames`` (a model's frames
through the render's public pieces), ``tiny_pipelines`` (with ``tiny_pipeline_settings``),
``synthsign_corpus`` (with ``small_synthsign_settings`` and
``phoenix_fixture``), ``run_cli`` / ``run_cli_fd``, ``cli_error_line``, ``one_torch_thread``,
``interrupted_after_step`` and ``browser`` (Debian's chromium through Playwright, for the report and demo tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

DATA_DIR = Path(__file__).parent / "data"
PHOENIX_FIXTURE = DATA_DIR / "phoenix"
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


# ------------------------------------------------------------------ one torch thread

@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared CPU: one thread, so that OpenMP threads do not fight over
    cores (and in-process runs compute as one-thread subprocesses do). Ask for it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``: set for the module."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------------ the command line, in-process

def _cli_runner(capture):
    from signgen.cli.main import main

    def run(*argv) -> tuple[int, str, str]:
        code = main([str(arg) for arg in argv])
        out, err = capture.readouterr()
        return code, out, err

    return run


@pytest.fixture
def run_cli(capsys):
    """``run_cli("render", "--gloss", "A", ...)`` -> (exit code, stdout, stderr): ``signgen``
    through ``signgen.cli.main.main``, arguments made strings, output captured by capsys."""
    return _cli_runner(capsys)


@pytest.fixture
def run_cli_fd(capfd):
    """:func:`run_cli`, captured at file-descriptor level (native libraries' output counts)."""
    return _cli_runner(capfd)


def _error_line(err: str, only: bool = True) -> str:
    """The one ``signgen: error:`` line of ``err``; with ``only``, the only non-blank line."""
    if only:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("signgen: error: "), err
    else:
        lines = [line for line in err.splitlines() if line.startswith("signgen: error:")]
        assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="session")
def cli_error_line():
    """``cli_error_line(err, only=True)``: the single one-line error a failed command printed."""
    return _error_line


# ------------------------------------------------------------------ tiny frame models

def _vit(patch_size: int, hidden_size: int, intermediate_size: int) -> str:
    return (f"{{backbone: vit, clip_path: null, patch_size: {patch_size}, hidden_size: {hidden_size}, "
            f"num_layers: 1, num_heads: 2, intermediate_size: {intermediate_size}}}")


# frame-tiny.yaml shrunk further, so that a test trains in seconds on a shared CPU: 32 x 24
# pixels, frame-tiny's three UNet levels (cross-attention in the last).
TINY_FRAME_BASE = [
    "model.resolution=[32, 24]",
    f"model.encoder={_vit(4, 32, 64)}",
    f"model.pose_encoder={_vit(4, 32, 64)}",
    "model.fusion.embed_dim=32",
    "model.fusion.hidden_dim=64",
    "model.unet.block_out_channels=[16, 16, 32]",
    "model.unet.attention_head_dim=2",
    "model.unet.cross_attention_dim=32",
    "model.unet.norm_num_groups=8",
]
# Sizes: what each changes in the base.
TINY_FRAME_SIZES = {
    "32x24": [],
    # 16 x 16 pixels, two UNet levels (the second with cross-attention), narrower encoders.
    "16x16": [
        "model.resolution=[16, 16]",
        f"model.encoder={_vit(8, 16, 16)}",
        f"model.pose_encoder={_vit(8, 16, 16)}",
        "model.fusion.embed_dim=8",
        "model.fusion.hidden_dim=8",
        "model.unet.block_out_channels=[16, 32]",
        "model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
        "model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]",
        "model.unet.cross_attention_dim=16",
    ],
}
ADAPTER_OPTIONS = {"num_attention_heads": 2, "norm_num_groups": 8, "max_frames": 16}


def frame_config(*overrides: str, size: str = "16x16"):
    """The tiny frame config of ``size``, then ``overrides`` (KEY=VALUE)."""
    from signgen.config import CONFIG_FOLDER, load_frame_config

    return load_frame_config(CONFIG_FOLDER / "frame-tiny.yaml", [*TINY_FRAME_BASE, *TINY_FRAME_SIZES[size], *overrides])


def make_frame_model(seed: int = 0, *overrides: str, size: str = "16x16", pose_path: bool = True,
                     with_denoiser: bool = True, train: bool = False):
    """An untrained tiny frame model, seeded with ``seed``. With ``pose_path``, the
    zero-initialised pose channels of conv_in get random weights (all of conv_in is drawn
    again, N(0, 0.1)), so that every condition matters. In eval mode unless ``train``."""
    from signgen.models.frame_model import FrameModel

    torch.manual_seed(seed)
    model = FrameModel.from_config(frame_config(*overrides, size=size).model, with_denoiser=with_denoiser)
    if pose_path:
        with torch.no_grad():
            model.unet.conv_in.weight.normal_(0, 0.1)
    return model.train(train)


def randomize_(module: torch.nn.Module, seed: int = 1, std: float = 0.05) -> torch.nn.Module:
    """Move every weight of ``module`` by random noise (a stand-in for a trained adapter:
    the zero-initialised output projections become non-zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
    return module


def make_adapter(frame_model, randomized: bool = False, **options):
    """A temporal adapter for ``frame_model``'s UNet (small heads; ``options`` add to or
    replace ``ADAPTER_OPTIONS``), moved off its identity start with ``randomized``."""
    from signgen.models.temporal import TemporalAdapter

    adapter = TemporalAdapter.for_unet(frame_model.unet, **{**ADAPTER_OPTIONS, **options})
    return randomize_(adapter) if randomized else adapter


@pytest.fixture(scope="session")
def tiny_frame_config():
    """``tiny_frame_config(*overrides, size="16x16")``: see :func:`frame_config`."""
    return frame_config


@pytest.fixture(scope="session")
def tiny_frame_model():
    """``tiny_frame_model(seed=0, *overrides, size="16x16", pose_path=True, with_denoiser=True,
    train=False)``: see :func:`make_frame_model`."""
    return make_frame_model


@pytest.fixture(scope="session")
def tiny_adapter():
    """``tiny_adapter(frame_model, randomized=False, **options)``: see :func:`make_adapter`."""
    return make_adapter


@pytest.fixture(scope="session")
def randomize():
    """``randomize(module, seed=1, std=0.05)``: every weight moved by noise, in place."""
    return randomize_


# ------------------------------------------------------------------ sampling a model's frames

# What the sampling tests were written against: the defaults sampling had before one render
# path (issue #23), frame-wise DPM-Solver++ with every step guided and nothing after it.
SAMPLING_DEFAULTS = {"scheduler": "dpm", "num_steps": 25, "appearance_scale": 1.5, "full_scale": 2.0,
                     "guidance_interval": 1.0, "noise_correlation": 0.0, "deflicker": 0.0, "keep_coarse": False,
                     "steady_torso": 0.0}


def sample_video_frames(model, image, poses, adapter=None, coarse=None, reference=None, seed: int = 0, **settings):
    """Frames (T, 3, H, W) in [-1, 1] that ``model`` (with the temporal ``adapter``, if any)
    draws for pose maps ``poses`` (T, C, H, W) from a signer ``image`` (3, H, W) in [-1, 1]
    or its encoding (``model.encode_appearance``), and for v2 models the ``coarse`` images
    and ``reference`` features: the render's own pieces (video_conditions, prepare_sampler,
    denoise) with ``settings`` (RenderSettings fields) over :data:`SAMPLING_DEFAULTS`."""
    from signgen.models.encoders import EncoderOutput
    from signgen.pipelines.conditions import video_conditions
    from signgen.pipelines.denoising import InitialNoise, denoise
    from signgen.pipelines.schedulers import prepare_sampler
    from signgen.pipelines.settings import RenderSettings, check_seed

    settings = RenderSettings(**{**SAMPLING_DEFAULTS, **settings})
    seed = check_seed(seed)
    if isinstance(image, EncoderOutput):
        appearance = image
    else:
        with torch.no_grad():
            appearance = model.encode_appearance(image[None])
    conditions = video_conditions(model, appearance, poses, coarse, reference, settings.frame_batch_size)
    sampler = prepare_sampler(model, settings)
    noise = InitialNoise(seed, len(poses), model.sample_shape, settings.noise_correlation)
    return denoise(model, adapter, conditions, sampler, settings, noise.frames(0, len(poses)), noise.generator)


@pytest.fixture(scope="session")
def sample_frames():
    """``sample_frames(model, image, poses, adapter=None, coarse=None, reference=None, seed=0,
    **settings)``: see :func:`sample_video_frames`."""
    return sample_video_frames


# ------------------------------------------------------------------ tiny pipelines

# Small windows, so that a 12-frame render crosses a window boundary.
TINY_SETTINGS = {"num_steps": 2, "window_size": 8, "overlap": 2, "frame_batch_size": 8}


def build_tiny_pipelines(root: Path) -> dict[str, Path]:
    """Training-output-like folders and pipelines built from them, under ``root``:
    ``frame_model`` and ``adapter`` (what the training commands write), ``frame_only`` (a
    pipeline without adapter) and ``with_adapter`` (with a randomised, non-identity one)."""
    from signgen.pipelines.pipeline import SignPipeline

    model = make_frame_model()
    frame_dir = model.save_pretrained(root / "frame_model")
    adapter_dir = root / "adapter"
    make_adapter(model, randomized=True).save_pretrained(adapter_dir, safe_serialization=True)
    SignPipeline.assemble(frame_dir, None, root / "frame_only", **TINY_SETTINGS)
    SignPipeline.assemble(frame_dir, adapter_dir, root / "with_adapter", **TINY_SETTINGS)
    return {"frame_model": frame_dir, "adapter": adapter_dir, "frame_only": root / "frame_only",
            "with_adapter": root / "with_adapter"}


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory) -> dict[str, Path]:
    """:func:`build_tiny_pipelines`, built once a session. Treat as read-only: copy a
    folder (shutil.copytree) before changing anything in it."""
    return build_tiny_pipelines(tmp_path_factory.mktemp("tiny_pipelines"))


@pytest.fixture(scope="session")
def tiny_pipeline_settings() -> dict:
    """The pipeline settings of :func:`tiny_pipelines` (a copy of ``TINY_SETTINGS``)."""
    return dict(TINY_SETTINGS)


# ------------------------------------------------------------------ a small SynthSign corpus

@pytest.fixture(scope="session")
def small_synthsign_settings():
    """Two seen signers and one unseen, one video per split, sentences of 2 or 3 letters."""
    from signgen.corpora.synthsign import SynthSignSettings

    return SynthSignSettings(signers=2, videos=4, seed=0, unseen_signers=1, min_glosses=2, max_glosses=3)


@pytest.fixture(scope="session")
def synthsign_corpus(small_synthsign_settings, tmp_path_factory) -> Path:
    """A SynthSign corpus of ``small_synthsign_settings``, written once a session (in
    seconds). Treat as read-only: copy it (shutil.copytree) before changing anything."""
    from signgen.corpora.synthsign import write_synthsign

    root = tmp_path_factory.mktemp("synthsign") / "corpus"
    write_synthsign(root, small_synthsign_settings, progress=False)
    return root


@pytest.fixture(scope="session")
def phoenix_fixture() -> Path:
    """tests/data/phoenix: a PHOENIX-layout corpus in miniature (read-only: copy it first)."""
    return PHOENIX_FIXTURE


@pytest.fixture(scope="session")
def browser():
    """A headless chromium (``playwright.sync_api.Browser``): Debian's, driven by Playwright,
    which never downloads a browser here. Without either the test skips, saying why."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on PATH (bash install.sh --test installs Debian's as root): browser test not run")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install 'signgen[test]'): browser test not run")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def interrupted_after_step():
    """``with interrupted_after_step(n): train(...)``: the training run stops as a Ctrl-C
    would (KeyboardInterrupt, which the block expects) right after its checkpoint of step
    ``n``; the driver is whole again after the block."""
    import contextlib

    from signgen.training import driver

    @contextlib.contextmanager
    def interrupted(step: int):
        save_checkpoint = driver.Trainer._checkpoint

        def checkpoint_then_interrupt(trainer):
            save_checkpoint(trainer)
            if trainer.step == step:
                raise KeyboardInterrupt

        driver.Trainer._checkpoint = checkpoint_then_interrupt
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            driver.Trainer._checkpoint = save_checkpoint

    return interrupted


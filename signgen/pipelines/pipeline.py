"""The render pipeline: glosses (or a pose sequence) and one signer photo in, video frames out.

A pipeline is a trained frame model (stages 1-2), an optional temporal adapter (stage 3)
and the render settings it uses unless told otherwise (:class:`RenderSettings`); on disk
one folder (:mod:`signgen.pipelines.folder`). ``signgen.load_pipeline(None)`` loads the
embedded default in ``signgen/assets/default_pipeline``.

A render, step by step (:meth:`SignPipeline.__call__`): the settings are checked and the
sampler with them; glosses become the driving pose (:mod:`signgen.pipelines.driving`); the
photo is encoded once and, for v2 models, the pose placed at the photo's signer
(:mod:`signgen.pipelines.signer`); then, chunk by chunk (:mod:`signgen.pipelines.streaming`),
the photo is warped to each frame, every frame's conditions are computed
(:mod:`signgen.pipelines.conditions`) and denoised (:mod:`signgen.pipelines.denoising`), and
the frames finished (keep-coarse pixels, deflicker), gathered or handed out as they come
(``stream=True``) to :func:`signgen.pipelines.postprocess.write_render`, which upscales and
writes them.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from pose_format import Pose
from tqdm.auto import tqdm

from signgen.errors import SigngenError
from signgen.files import MANIFEST_NAME
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import TemporalAdapter
from signgen.pipelines import folder as pipeline_folder
from signgen.pipelines.folder import PipelineModels
from signgen.pipelines.driving import GlossOptions, check_source, driving_pose
from signgen.pipelines.postprocess import OUTPUT_SIZE
from signgen.pipelines.schedulers import prepare_sampler
from signgen.pipelines.settings import RenderSettings, check_seed, names
from signgen.pipelines.signer import SignerEncoding, driving_geometry, encode_signer, place_at_signer
from signgen.pipelines.streaming import drawn_chunks, finished_chunks

DEFAULT_PIPELINE = Path(__file__).resolve().parents[1] / "assets" / "default_pipeline"


@dataclass
class RenderStream:
    """A video being rendered: ``chunks`` of uint8 RGB frames (n, H, W, 3) at the model's
    resolution, drawn as they are read (once), the driving ``pose`` and the frame rate."""

    chunks: Iterator[np.ndarray]
    pose: Pose
    fps: float

    def __len__(self) -> int:
        return len(self.pose.body.data)


@dataclass
class RenderResult:
    """A rendered video: ``frames`` uint8 RGB (T, H, W, 3) at the model's resolution (the
    output size with ``full_resolution``), the driving ``pose`` (178 points, T frames,
    PHOENIX framing) and the frame rate."""

    frames: np.ndarray
    pose: Pose
    fps: float

    def __len__(self) -> int:
        return len(self.frames)


class SignPipeline:
    """Frame model + optional temporal adapter + render settings; call it to render.

    >>> pipeline = signgen.load_pipeline(None)             # the embedded default
    >>> result = pipeline(glosses="H A L L O", signer="me.png", seed=0, deflicker=2)
    >>> write_render(result, "hallo.mp4")
    """

    def __init__(self, frame_model: FrameModel, temporal_adapter: TemporalAdapter | None = None,
                 settings: RenderSettings | None = None, hand_model=None):
        frame_model.require_denoiser()
        if temporal_adapter is not None:
            temporal_adapter.check_fits(frame_model.unet)
            temporal_adapter.eval()
        # Channels-last convolutions: about 20 % faster rendering on CPU (benchmarks/bench_render.py).
        frame_model.unet.to(memory_format=torch.channels_last)
        self.frame_model = frame_model.eval()
        self.temporal_adapter = temporal_adapter
        # The hand stage (signgen.models.hands.HandModel): each hand redrawn in its own crop.
        self.hand_model = None if hand_model is None else hand_model.eval()
        self.settings = RenderSettings() if settings is None else settings
        # Settings the model cannot render with fail when a pipeline is assembled or loaded.
        self.check_settings(self.settings)

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of the generated frames."""
        return self.frame_model.resolution

    @property
    def device(self) -> torch.device:
        return self.frame_model.unet.device

    def to(self, device: str | torch.device) -> "SignPipeline":
        self.frame_model.to(device)
        for part in (self.temporal_adapter, self.hand_model):
            if part is not None:
                part.to(device)
        return self

    def check_settings(self, settings: RenderSettings):
        """What ``settings`` need of this pipeline's models; returns the sampler they build
        (:func:`signgen.pipelines.schedulers.prepare_sampler`)."""
        if self.temporal_adapter is not None and settings.window_size > self.temporal_adapter.config.max_frames:
            raise SigngenError(f"window_size {settings.window_size} exceeds the temporal adapter's max_frames "
                               f"{self.temporal_adapter.config.max_frames}")
        if settings.strength != 1.0 and not self.frame_model.coarse_image:
            raise SigngenError("strength below 1 needs a model that draws from the photo warped to the pose (a v2 frame model)")
        return prepare_sampler(self.frame_model, settings)

    def encode_signer(self, signer: Any = None, fit: str = "pad", signer_pose: Any = None) -> SignerEncoding:
        """Everything the model reads of a signer photo (:func:`signgen.pipelines.signer.encode_signer`);
        pass the result as ``signer=`` to render several videos of one signer without encoding it again."""
        return encode_signer(self.frame_model, signer, fit, signer_pose)

    def __call__(self, glosses=None, pose=None, signer=None, *, seed: int = 0, progress: bool = True, signer_pose=None,
                 fit: str = "pad", keep_frame: bool = False, g2p=None, lexicon=None, language: str = "gsg",
                 on_missing: str = "fingerspell", stream: bool = False, **settings) -> RenderResult | RenderStream:
        """Render ``glosses`` (``"H A L L O"`` or a list) or a ``pose`` (``Pose`` or ``.pose``
        path; exactly one of the two) as signed by ``signer`` (photo path, PIL image, uint8
        array, an :meth:`encode_signer` result, or ``None`` for the bundled signer; v2 models
        also take its pose, ``signer_pose``). The video is drawn chunk by chunk
        (:mod:`signgen.pipelines.streaming`); with ``stream`` the chunks are handed out as
        they are drawn (a :class:`RenderStream`: everything is checked and prepared now, the
        frames drawn as it is read), else gathered into one :class:`RenderResult`.
        The same ``seed`` gives the same frames. ``g2p``, ``lexicon``, ``language``,
        ``on_missing``: how glosses become a pose (:class:`signgen.pipelines.driving.GlossOptions`).
        ``keep_frame`` drives with ``pose`` where it lies in its own frame instead of placing it
        in PHOENIX's framing (and, for v2 models, at the photo's signer). Every field of
        :class:`RenderSettings` is a keyword too (``deflicker=2``, ``num_steps=20``); unset,
        the pipeline's own."""
        settings = self.settings.replace(**settings)
        seed = check_seed(seed)
        sampler = self.check_settings(settings)
        check_source(glosses, pose)
        options = GlossOptions(g2p=g2p, lexicon=lexicon, language=language, on_missing=on_missing)
        with tqdm(total=2, desc="preparing", unit="stage", disable=not progress, leave=False) as bar:
            driving = driving_pose(glosses, pose, keep_frame, options)
            bar.update()
            encoding = self.encode_signer(signer, fit, signer_pose)
            driving = self._at_signer(encoding, driving, keep_frame)
            bar.update()
        geometry = driving_geometry(driving, self.resolution, settings.steady_torso)
        output = None
        if settings.full_resolution and settings.keep_coarse and self.frame_model.coarse_image:
            output = driving_geometry(driving, OUTPUT_SIZE, settings.steady_torso)
        models = PipelineModels(self.frame_model, self.temporal_adapter, self.hand_model)
        drawn = drawn_chunks(models, encoding, geometry, sampler, settings, seed, progress, output)
        rendered = RenderStream(finished_chunks(drawn, output or geometry, settings), driving, float(driving.body.fps))
        return rendered if stream else RenderResult(np.concatenate(list(rendered.chunks)), driving, rendered.fps)

    def _at_signer(self, encoding: SignerEncoding, driving: Pose, keep_frame: bool) -> Pose:
        """The driving pose within the video length cap, placed at the photo's signer unless
        ``keep_frame`` (v2 models)."""
        from signgen.poses.stitch import check_video_length

        check_video_length(len(driving.body.data), float(driving.body.fps))
        if self.frame_model.coarse_image and not keep_frame:
            driving = place_at_signer(driving, encoding, self.resolution)
        return driving

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the pipeline folder (:mod:`signgen.pipelines.folder`), atomically."""
        models = PipelineModels(self.frame_model, self.temporal_adapter, self.hand_model)
        return pipeline_folder.save_pipeline_folder(Path(folder), models, self.settings)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "SignPipeline":
        """Load a pipeline folder; a folder of another kind or any damage is one SigngenError line."""
        models, settings = pipeline_folder.load_pipeline_folder(Path(folder))
        return cls(models.frame_model, models.temporal_adapter, settings, models.hand_model)

    @classmethod
    def assemble(cls, frame_model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None,
                 out_dir: str | os.PathLike, hand_dir: str | os.PathLike | None = None, **settings) -> "SignPipeline":
        """Build a pipeline folder ``out_dir`` from training outputs
        (:func:`signgen.pipelines.folder.read_training_outputs`: a frame model, optionally a
        temporal adapter and a hand stage) and return the pipeline; ``settings`` override
        :class:`RenderSettings` fields; unless given, the window size and overlap follow the
        adapter's training config when it is found beside the adapter."""
        adapter_dir = None if adapter_dir is None else Path(adapter_dir)
        hand_dir = None if hand_dir is None else Path(hand_dir)
        pipeline_folder.check_not_inside(Path(out_dir), [Path(frame_model_dir), adapter_dir, hand_dir])
        models, windows = pipeline_folder.read_training_outputs(Path(frame_model_dir), adapter_dir, hand_dir)
        pipeline = cls(models.frame_model, models.temporal_adapter, RenderSettings().replace(**{**windows, **settings}),
                       models.hand_model)
        pipeline.save_pretrained(out_dir)
        return pipeline


def _settings_in_signature(render):
    """``render``'s signature with every render setting as a keyword (for ``help()`` and editors)."""
    signature = inspect.signature(render)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in names()]
    render.__signature__ = signature.replace(parameters=fixed + extra)


_settings_in_signature(SignPipeline.__call__)


def load_pipeline(path: str | os.PathLike | None = None) -> SignPipeline:
    """The pipeline in folder ``path``, or the embedded default for ``None``."""
    if path is None:
        if not (DEFAULT_PIPELINE / MANIFEST_NAME).is_file():
            raise SigngenError(
                f"the embedded default model is missing ({DEFAULT_PIPELINE}); reinstall signgen or pass a pipeline folder (--model DIR)"
            )
        path = DEFAULT_PIPELINE
    return SignPipeline.from_pretrained(path)

"""The render pipeline: glosses (or a pose sequence) and one signer photo in, video frames out.

A pipeline is a trained frame model (stages 1-2), an optional temporal adapter (stage 3)
and the sampling settings it renders with by default. On disk it is one folder::

    model_index.json       {"kind": "signgen-pipeline", "format_version": 1, ...}
    pipeline.json          sampling defaults (PipelineDefaults): scheduler, steps,
                           guidance, window and overlap, batch sizes
    frame_model/           a frame-model folder (signgen.models.frame_model)
    temporal_adapter/      config.json + safetensors (signgen.models.temporal), optional

``SignPipeline.assemble`` builds one from training outputs; the embedded default lives in
``signgen/assets/default_pipeline`` and ``signgen.load_pipeline(None)`` loads it.

Rendering a video: glosses -> pose (lexicon stitching or a learned gloss-to-pose model,
``signgen.poses``) -> pose maps at the model's resolution; the signer photo is encoded
once; every frame's conditions are computed once; then all frames are denoised in
batches with the three guidance modes in one batched UNet call per step
(``signgen.pipelines.sampling``), or, with a temporal adapter, as overlapping windows blended at
every step (``signgen.pipelines.windows``). Frames come out at the model's resolution;
:func:`write_render` upscales them (Lanczos) to PHOENIX's 260 x 210 and writes the mp4.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from pose_format import Pose
from tqdm.auto import tqdm

from signgen import __version__
from signgen.atomic import atomic_folder, is_replaceable_folder
from signgen.config import config_to_dict, from_dict
from signgen.models.encoders import EncoderOutput
from signgen.errors import SigngenError
from signgen.files import MANIFEST_NAME, read_json_object
from signgen.files import read_manifest as read_model_manifest
from signgen.models.frame_model import KIND as FRAME_MODEL_KIND
from signgen.models.frame_model import FrameModel
from signgen.pipelines.deflicker import check_deflicker
from signgen.pipelines.deflicker import deflicker as deflicker_frames
from signgen.pipelines.sampling import (
    GuidanceScales,
    check_seed,
    frames_to_uint8,
    make_scheduler,
    parse_guidance,
    sample_frames,
    set_timesteps,
)
from signgen.pipelines.limits import MAX_GUIDANCE, MAX_STEPS
from signgen.poses.stitch import check_video_length
from signgen.models.reference import ReferenceState
from signgen.pipelines.signer_image import DEFAULT_SIGNER_PHOTO, DEFAULT_SIGNER_POSE, SignerPhoto, photo_keypoints, signer_photo
from signgen.models.temporal import TemporalAdapter, load_adapter

KIND = "signgen-pipeline"
FORMAT_VERSION = 1
DEFAULTS_NAME = "pipeline.json"
FRAME_MODEL_FOLDER = "frame_model"
ADAPTER_FOLDER = "temporal_adapter"
DEFAULT_PIPELINE = Path(__file__).resolve().parents[1] / "assets" / "default_pipeline"
# Written videos have PHOENIX's frame size (H, W), whatever the model's resolution.
OUTPUT_SIZE = (260, 210)
# Folders written by the training commands that hold the model one level down.
FRAME_TRAINING_MODEL = "model"
ADAPTER_TRAINING_CONFIG = "config.yaml"


@dataclass
class PipelineDefaults:
    """How a pipeline renders unless told otherwise (``pipeline.json``).

    Guidance: ``eps_u + appearance_scale (eps_a - eps_u) + full_scale (eps_f - eps_a)``;
    both 1.0 is one plain conditional call per step (three times faster);
    ``guidance_interval`` is the share of the steps, noisiest first, that are guided (see
    :class:`signgen.pipelines.sampling.GuidanceScales`). ``window_size``
    and ``overlap`` apply with a temporal adapter: ``window_size`` should be the adapter's
    training clip length. ``frame_batch_size`` frames (each times three guidance modes)
    go through the UNet at once without an adapter; ``windows_per_batch`` windows with one.
    ``noise_correlation`` shares the initial noise across frames
    (:func:`signgen.pipelines.windows.initial_noise`); ``keep_coarse`` (v2 models) keeps
    the coarse image wherever it covers the frame (:func:`keep_coarse_pixels`);
    ``steady_torso`` (v2 models) warps the torso and head of the coarse images by their
    keypoints smoothed over that many frames (:func:`signgen.poses.warp.steady_rigid_points`);
    ``deflicker`` filters the rendered frames over time with a Gaussian of that many frames,
    moving arms and hands left as drawn (:func:`signgen.pipelines.deflicker.deflicker`).
    """

    scheduler: str = "dpm"
    num_steps: int = 10
    appearance_scale: float = 1.5
    full_scale: float = 2.0
    guidance_interval: float = 1.0
    window_size: int = 16
    overlap: int = 4
    frame_batch_size: int = 16
    windows_per_batch: int = 1
    noise_correlation: float = 0.0
    keep_coarse: bool = False
    steady_torso: float = 0.0
    deflicker: float = 0.0

    def __post_init__(self):
        """Every setting checked on its own (types, finite numbers, ranges); what depends on
        the model (num_steps within its training timesteps, a known scheduler) is checked by
        :class:`SignPipeline`, so that a bad pipeline is refused when assembled or loaded."""
        for name in ("num_steps", "window_size", "overlap", "frame_batch_size", "windows_per_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise SigngenError(f"pipeline setting {name} must be a whole number, not {value!r}")
        for name in ("num_steps", "window_size", "frame_batch_size", "windows_per_batch"):
            if getattr(self, name) < 1:
                raise SigngenError(f"pipeline setting {name} must be at least 1, not {getattr(self, name)}")
        if self.num_steps > MAX_STEPS:
            raise SigngenError(f"pipeline setting num_steps must be from 1 to {MAX_STEPS}, not {self.num_steps}")
        if not 0 <= self.overlap < self.window_size:
            raise SigngenError(f"pipeline overlap must be at least 0 and less than window_size {self.window_size}, not {self.overlap}")
        if not isinstance(self.scheduler, str) or not self.scheduler:
            raise SigngenError(f"pipeline setting scheduler must be a scheduler name, not {self.scheduler!r}")
        for name in ("appearance_scale", "full_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not -MAX_GUIDANCE <= value <= MAX_GUIDANCE:
                raise SigngenError(f"pipeline setting {name} must be a finite number from {-MAX_GUIDANCE:g} to "
                                   f"{MAX_GUIDANCE:g}, not {value!r}")
        from signgen.poses.warp import MAX_STEADY_SIGMA  # cv2 comes with it: only when a pipeline is set up

        steady = self.steady_torso
        if isinstance(steady, bool) or not isinstance(steady, (int, float)) or not 0.0 <= steady <= MAX_STEADY_SIGMA:
            raise SigngenError(f"pipeline setting steady_torso is the smoothing of the torso and head keypoints in frames, "
                               f"a number from 0 to {MAX_STEADY_SIGMA:g}, not {steady!r}")
        check_deflicker(self.deflicker)
        if not isinstance(self.keep_coarse, bool):
            raise SigngenError(f"pipeline setting keep_coarse must be true or false, not {self.keep_coarse!r}")
        correlation = self.noise_correlation
        if isinstance(correlation, bool) or not isinstance(correlation, (int, float)) or not 0.0 <= correlation <= 1.0:
            raise SigngenError(f"pipeline setting noise_correlation is the correlation of the initial noise between "
                               f"frames, a number from 0 to 1, not {correlation!r}")
        interval = self.guidance_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0.0 <= interval <= 1.0:
            raise SigngenError(f"pipeline setting guidance_interval is the share of the steps that are guided, "
                               f"a number from 0 to 1, not {interval!r}")

    @property
    def guidance(self) -> GuidanceScales:
        return GuidanceScales(appearance=self.appearance_scale, full=self.full_scale, interval=self.guidance_interval)


@dataclass
class SignerEncoding:
    """A signer photo as a pipeline renders from it, computed once: the appearance tokens;
    for v2 models also the photo at the model's resolution, its pose there (``keypoints``:
    xy (178, 2) in model pixels and confidence (178,)) and its reference features."""

    appearance: EncoderOutput
    photo: SignerPhoto | None = None
    keypoints: tuple[np.ndarray, np.ndarray] | None = None
    reference: ReferenceState | None = None


@dataclass
class RenderResult:
    """A rendered video: ``frames`` uint8 RGB (T, H, W, 3) at the model's resolution, the
    driving ``pose`` (178 points, T frames, PHOENIX framing) and the frame rate."""

    frames: np.ndarray
    pose: Pose
    fps: float

    def __len__(self) -> int:
        return len(self.frames)


class SignPipeline:
    """Frame model + optional temporal adapter + sampling defaults; call it to render.

    >>> pipeline = signgen.load_pipeline(None)             # the embedded default
    >>> result = pipeline(glosses="H A L L O", signer="me.png", seed=0)
    >>> write_render(result, "hallo.mp4")
    """

    def __init__(self, frame_model: FrameModel, temporal_adapter: TemporalAdapter | None = None,
                 defaults: PipelineDefaults | None = None):
        frame_model._require_denoiser()
        defaults = PipelineDefaults() if defaults is None else defaults
        if temporal_adapter is not None:
            temporal_adapter.check_fits(frame_model.unet)
            if defaults.window_size > temporal_adapter.config.max_frames:
                raise SigngenError(f"window_size {defaults.window_size} exceeds the temporal adapter's max_frames {temporal_adapter.config.max_frames}")
            temporal_adapter.eval()
        # Channels-last convolutions: about 20 % faster rendering on CPU (benchmarks/bench_render.py).
        frame_model.unet.to(memory_format=torch.channels_last)
        self.frame_model = frame_model.eval()
        self.temporal_adapter = temporal_adapter
        self.defaults = defaults
        # An unknown scheduler name, or more steps than the model's training timesteps, fails now
        # (when a pipeline is assembled or loaded), not at render time.
        try:
            set_timesteps(make_scheduler(self.defaults.scheduler, frame_model.noise_scheduler.config), self.defaults.num_steps,
                          int(frame_model.noise_scheduler.config.num_train_timesteps))
        except SigngenError as error:
            raise SigngenError(f"pipeline settings (scheduler {self.defaults.scheduler!r}, num_steps "
                               f"{self.defaults.num_steps}): {error}") from None

    # ------------------------------------------------------------ properties

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of the generated frames."""
        return self.frame_model.resolution

    @property
    def device(self) -> torch.device:
        return self.frame_model.unet.device

    def to(self, device: str | torch.device) -> "SignPipeline":
        self.frame_model.to(device)
        if self.temporal_adapter is not None:
            self.temporal_adapter.to(device)
        return self

    # ---------------------------------------------------------------- inputs

    def encode_signer(self, signer: Any = None, fit: str = "pad", signer_pose: Any = None) -> SignerEncoding:
        """Everything the model reads of a signer photo (path, PIL image or uint8 array;
        ``None`` = the bundled signer), computed once. Pass the result as ``signer=`` to
        render several videos of one signer without encoding the photo again.

        A v2 model also needs the photo's pose (:func:`signgen.pipelines.signer_image.photo_keypoints`:
        ``signer_pose`` a Pose, a ``.pose`` file or arrays; the bundled signer's ships with
        it; otherwise MediaPipe finds it) and computes the photo's reference features."""
        if isinstance(signer, SignerEncoding):
            return signer
        model = self.frame_model
        if isinstance(signer, EncoderOutput):
            if model.coarse_image or model.reference_attention:
                raise SigngenError("this model reads the signer photo itself, not only its encoding: pass the photo")
            return SignerEncoding(signer)
        if signer is None and signer_pose is None:
            signer_pose = DEFAULT_SIGNER_POSE
        photo = signer_photo(DEFAULT_SIGNER_PHOTO if signer is None else signer, self.resolution, fit=fit)
        image = photo.image[None].to(self.device, model.unet.dtype)
        with torch.no_grad():
            appearance = model.encode_appearance(image)
            reference = model.reference_features(image, appearance) if model.reference_attention else None
        keypoints = photo_keypoints(photo, signer_pose) if model.coarse_image else None
        return SignerEncoding(appearance, photo, keypoints, reference)

    def coarse_images(self, encoding: SignerEncoding, pose: Pose) -> tuple[torch.Tensor, torch.Tensor]:
        """The photo warped to every frame of ``pose`` (placed in the photo's frame) at the
        model's resolution: images (T, 3, H, W) in [-1, 1] and uncovered masks (T, 1, H, W)."""
        from signgen.poses.warp import warp_to_pose

        xy, confidence = self._steadied_model_pixels(pose)
        photo = ((encoding.photo.image.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        source_xy, source_confidence = encoding.keypoints
        warped = [warp_to_pose(photo, source_xy, source_confidence, xy[t], confidence[t]) for t in range(len(xy))]
        images = torch.from_numpy(np.stack([w.image for w in warped])).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        return images, torch.from_numpy(np.stack([w.uncovered for w in warped])[:, None].astype(np.float32))

    def limb_regions(self, pose: Pose, sigma: float) -> torch.Tensor:
        """(T, H, W) bool: the arms and hands of every frame of ``pose`` at the model's
        resolution that move within the reach of a deflicker filter of width ``sigma``
        (:func:`signgen.poses.warp.limb_regions`; shoulders steadied as the coarse images'
        are), which deflickering leaves alone."""
        from signgen.pipelines.deflicker import filter_reach
        from signgen.poses.warp import limb_regions

        xy, confidence = self._steadied_model_pixels(pose)
        return torch.from_numpy(limb_regions(xy, confidence, self.resolution, reach=filter_reach(sigma)))

    def place_at_signer(self, pose: Pose, encoding: SignerEncoding) -> Pose:
        """``pose`` moved and scaled so that its first frame's shoulders lie on the photo's:
        the signer signs where the photo shows them standing."""
        from signgen.poses import skeleton
        from signgen.poses.holistic import pose_from_arrays

        xy, confidence = self._model_pixels(pose)
        shoulders = [skeleton.LEFT_SHOULDER, skeleton.RIGHT_SHOULDER]
        seen = np.flatnonzero((confidence[:, shoulders] > 0).all(axis=1))
        if len(seen) == 0:
            return pose
        source = encoding.keypoints[0][shoulders]
        target = xy[seen[0]][shoulders]
        scale = np.linalg.norm(source[0] - source[1]) / max(np.linalg.norm(target[0] - target[1]), 1e-6)
        placed = (xy - target.mean(0)) * scale + source.mean(0)
        dims = pose.header.dimensions
        height, width = self.resolution
        return pose_from_arrays(placed * [dims.width / width, dims.height / height], confidence, float(pose.body.fps), dims.width, dims.height)

    def _steadied_model_pixels(self, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """``pose`` in model pixels, its torso and head keypoints steadied by the pipeline's
        ``steady_torso``: where the coarse images and the deflicker's limb regions put them."""
        from signgen.poses.warp import steady_rigid_points

        xy, confidence = self._model_pixels(pose)
        return steady_rigid_points(xy, confidence, self.defaults.steady_torso), confidence

    def _model_pixels(self, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        from signgen.poses.holistic import pose_arrays

        xy, confidence = pose_arrays(pose)
        dims = pose.header.dimensions
        height, width = self.resolution
        return xy.astype(np.float64) * [width / dims.width, height / dims.height], confidence

    @staticmethod
    def pose_from_glosses(glosses: str | Sequence[str], *, g2p: str | os.PathLike | Callable | None = None,
                          lexicon: Any = None, language: str = "gsg", on_missing: str = "fingerspell",
                          transition_seconds: float = 0.2) -> Pose:
        """The driving pose of ``glosses``: lexicon stitching (``lexicon``: a
        ``Lexicon``, an ``index.csv`` path, or ``None`` for the bundled DGS letters), or a
        learned gloss-to-pose model (``g2p``: its folder, or a loaded ``glosses -> Pose``)."""
        from signgen.poses.stitch import glosses_to_pose, parse_glosses

        if g2p is None or (isinstance(g2p, str) and g2p == "lexicon"):
            from signgen.poses.lexicon import Lexicon

            if isinstance(lexicon, (str, os.PathLike)):
                lexicon = Lexicon.from_csv(lexicon)
            return glosses_to_pose(glosses, lexicon=lexicon, language=language, on_missing=on_missing,
                                   transition_seconds=transition_seconds)
        if not callable(g2p):
            try:
                from signgen.pipelines.gloss_to_pose import load_gloss_to_pose
            except ImportError as error:
                raise SigngenError(f"a learned gloss-to-pose model is not available in this installation ({error})") from None
            g2p = load_gloss_to_pose(g2p, transition_seconds=transition_seconds, language=language)
        return g2p(parse_glosses(glosses))

    @staticmethod
    def prepare_pose(pose: Pose | str | os.PathLike, keep_frame: bool = False) -> Pose:
        """Any holistic pose (or ``.pose`` file) as the pipeline drives with it: 178 points,
        25 fps, placed in PHOENIX's 210 x 260 frame; with ``keep_frame``, left where it is
        in its own frame (evaluation compares the result with the video the pose came from)."""
        from signgen.poses.holistic import reduce_to_178
        from signgen.poses.transform import fill_gaps, prepare, resample

        if isinstance(pose, (str, os.PathLike)):
            from signgen.poses.io import read_pose

            pose = read_pose(pose)
        if not isinstance(pose, Pose):
            raise SigngenError(f"pose must be a pose_format.Pose or a .pose file, not {type(pose).__name__}")
        if len(pose.body.data) == 0:
            raise SigngenError("the pose has no frames")
        return resample(fill_gaps(reduce_to_178(pose))) if keep_frame else prepare(pose)

    def pose_maps(self, pose: Pose) -> torch.Tensor:
        """(T, C, H, W) pose maps of ``pose`` at the model's resolution."""
        from signgen.poses.raster import rasterize_pose

        maps = torch.from_numpy(rasterize_pose(pose, self.resolution))
        if maps.shape[1] != self.frame_model.pose_channels:
            raise SigngenError(f"pose maps have {maps.shape[1]} channels, the model reads {self.frame_model.pose_channels}")
        return maps

    # ---------------------------------------------------------------- render

    def __call__(
        self,
        glosses: str | Sequence[str] | None = None,
        pose: Pose | str | os.PathLike | None = None,
        signer: Any = None,
        steps: int | None = None,
        scheduler: str | None = None,
        guidance: GuidanceScales | tuple[float, float] | str | None = None,
        seed: int = 0,
        progress: bool = True,
        *,
        g2p: str | os.PathLike | Callable | None = None,
        lexicon: Any = None,
        language: str = "gsg",
        on_missing: str = "fingerspell",
        fit: str = "pad",
        keep_frame: bool = False,
        signer_pose: Any = None,
        strength: float = 1.0,
        noise_correlation: float | None = None,
        deflicker: float | None = None,
    ) -> RenderResult:
        """Render ``glosses`` (a string such as ``"H A L L O"`` or a list) or a ``pose``
        (``Pose`` or ``.pose`` path; give exactly one of the two) as signed by ``signer``
        (photo path, PIL image, uint8 array, an :meth:`encode_signer` result, or ``None``
        for the bundled signer). ``steps``, ``scheduler`` and ``guidance`` (``(appearance,
        full)`` scales or their text ``"A,F"``, over the pipeline's guidance interval, or
        ``GuidanceScales``; see :func:`signgen.pipelines.sampling.parse_guidance`) default
        to the pipeline's settings. The same seed gives the same
        frames. ``keep_frame`` drives with ``pose`` where it lies in its own frame instead
        of placing it in PHOENIX's framing (and, for v2 models, at the photo's signer).

        v2 models (coarse image, reference path) also take ``signer_pose``, the photo's
        pose (see :meth:`encode_signer`), and ``strength`` S in (0, 1]: below 1, sampling
        starts from the photo warped to each pose, noised to S, instead of pure noise.
        ``noise_correlation`` (default: the pipeline's) shares the initial noise across
        frames (:func:`signgen.pipelines.windows.initial_noise`); ``deflicker`` (default: the
        pipeline's) the width in frames of the filter over time (:mod:`signgen.pipelines.deflicker`).
        (Over 60 lines for its arguments and this description; the steps are methods.)"""
        if (glosses is None) == (pose is None):
            raise SigngenError("give either glosses or a pose to render, not both or neither")
        settings = self.defaults
        num_steps, scheduler, guidance, seed = self._sampling_settings(steps, scheduler, guidance, seed)
        if noise_correlation is not None:
            from signgen.pipelines.windows import check_noise_correlation

            check_noise_correlation(noise_correlation)  # before any work
        deflicker_sigma = settings.deflicker if deflicker is None else check_deflicker(deflicker)
        if glosses is not None:
            from signgen.poses.stitch import parse_glosses

            parse_glosses(glosses)  # no glosses, or too many: an error before the progress bars

        with tqdm(total=3, desc="preparing", unit="stage", disable=not progress, leave=False) as bar:
            bar.set_postfix_str("pose")
            if pose is not None:
                driving = self.prepare_pose(pose, keep_frame=keep_frame)
            else:
                driving = self.pose_from_glosses(glosses, g2p=g2p, lexicon=lexicon, language=language, on_missing=on_missing)
            bar.update()
            bar.set_postfix_str("signer")
            encoding = self.encode_signer(signer, fit=fit, signer_pose=signer_pose)
            bar.update()
            bar.set_postfix_str("pose maps")
            check_video_length(len(driving.body.data), float(driving.body.fps))
            driving, photo = self._photo_inputs(encoding, driving, keep_frame, strength)
            pose_maps = self.pose_maps(driving)
            bar.update()

        appearance = encoding.appearance
        correlation = settings.noise_correlation if noise_correlation is None else noise_correlation
        options = dict(scheduler=scheduler, num_steps=num_steps, guidance=guidance, seed=int(seed), noise_correlation=correlation,
                       frame_batch_size=settings.frame_batch_size, progress=progress, **photo)
        with torch.no_grad():
            if self.temporal_adapter is None:
                frames = sample_frames(self.frame_model, appearance, pose_maps, **options)
            else:
                from signgen.pipelines.windows import sample_video

                frames = sample_video(self.frame_model, self.temporal_adapter, appearance, pose_maps,
                                      window_size=settings.window_size, overlap=settings.overlap,
                                      windows_per_batch=settings.windows_per_batch, **options)
            if settings.keep_coarse and "coarse" in photo:
                frames = keep_coarse_pixels(frames, photo["coarse"])
            if deflicker_sigma:
                frames = deflicker_frames(frames, deflicker_sigma, keep=self.limb_regions(driving, deflicker_sigma))
        return RenderResult(frames=frames_to_uint8(frames), pose=driving, fps=float(driving.body.fps))

    def _sampling_settings(self, steps, scheduler, guidance, seed) -> tuple[int, str, GuidanceScales, int]:
        """The render's steps, scheduler, guidance and seed, the pipeline's defaults where
        not given; bad settings fail here, before any work."""
        settings = self.defaults
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer))):
            raise SigngenError(f"steps must be a whole number, not {steps!r}")
        num_steps = settings.num_steps if steps is None else int(steps)
        scheduler = settings.scheduler if scheduler is None else scheduler
        set_timesteps(make_scheduler(scheduler, self.frame_model.noise_scheduler.config), num_steps,
                      int(self.frame_model.noise_scheduler.config.num_train_timesteps))
        guidance = settings.guidance if guidance is None else parse_guidance(guidance, settings.guidance_interval)
        return num_steps, scheduler, guidance, check_seed(seed)

    def _photo_inputs(self, encoding: SignerEncoding, driving: Pose, keep_frame: bool, strength: float) -> tuple[Pose, dict]:
        """What a v2 model reads of the photo beside its encoding (coarse images, reference,
        strength), with the driving pose placed at the photo's signer unless ``keep_frame``."""
        model = self.frame_model
        if not model.coarse_image:
            if strength != 1.0:
                raise SigngenError("--strength needs a model that draws from the photo warped to the pose (a v2 frame model)")
            return driving, ({"reference": encoding.reference} if model.reference_attention else {})
        if not keep_frame:
            driving = self.place_at_signer(driving, encoding)
        return driving, {"coarse": self.coarse_images(encoding, driving), "reference": encoding.reference, "strength": strength}

    # ------------------------------------------------------------ save / load

    def save_pretrained(self, folder: str | os.PathLike) -> Path:
        """Write the pipeline folder (see the module docstring), atomically; an existing
        pipeline folder is replaced, any other existing folder refused."""
        folder = Path(folder)
        if folder.exists() and not is_replaceable_folder(folder, MANIFEST_NAME, KIND):
            raise SigngenError(f"refusing to overwrite {folder}: it exists and is not a signgen pipeline folder")
        with atomic_folder(folder) as tmp:
            self.frame_model.save_pretrained(tmp / FRAME_MODEL_FOLDER)
            if self.temporal_adapter is not None:
                self.temporal_adapter.save_pretrained(tmp / ADAPTER_FOLDER, safe_serialization=True)
            (tmp / DEFAULTS_NAME).write_text(json.dumps(config_to_dict(self.defaults), indent=2) + "\n", encoding="utf-8")
            manifest = {
                "kind": KIND,
                "format_version": FORMAT_VERSION,
                "signgen_version": __version__,
                "frame_model": FRAME_MODEL_FOLDER,
                "temporal_adapter": ADAPTER_FOLDER if self.temporal_adapter is not None else None,
                "resolution": list(self.resolution),
            }
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "SignPipeline":
        """Load a pipeline folder; a folder of another kind (a frame model, a temporal
        adapter, anything else) or any damage is one SigngenError line."""
        folder = Path(folder)
        manifest = read_manifest(folder)
        frame_model = FrameModel.from_pretrained(folder / FRAME_MODEL_FOLDER)
        adapter = None
        if manifest.get("temporal_adapter"):
            adapter_folder = folder / ADAPTER_FOLDER
            if not adapter_folder.is_dir():
                raise SigngenError(f"pipeline folder is incomplete: {adapter_folder} is missing")
            adapter = load_adapter(adapter_folder)
        return cls(frame_model, adapter, read_defaults(folder / DEFAULTS_NAME))

    @classmethod
    def assemble(cls, frame_model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None,
                 out_dir: str | os.PathLike, **defaults) -> "SignPipeline":
        """Build a pipeline folder ``out_dir`` from training outputs and return the pipeline.

        ``frame_model_dir`` is a frame-model folder or a ``signgen train diffusion`` output
        folder (its ``model/``); ``adapter_dir`` an adapter folder or a ``signgen train
        temporal`` output folder, or ``None``. ``defaults`` override
        :class:`PipelineDefaults` fields; unless given, the window size and overlap follow
        the adapter's training config when it is found beside the adapter.
        """
        frame_dir = Path(frame_model_dir)
        if (frame_dir / FRAME_TRAINING_MODEL / MANIFEST_NAME).is_file():
            frame_dir = frame_dir / FRAME_TRAINING_MODEL
        frame_model = FrameModel.from_pretrained(frame_dir)
        adapter = None
        settings = config_to_dict(PipelineDefaults())
        if adapter_dir is not None:
            adapter = load_adapter(adapter_dir)
            settings.update(_adapter_window_settings(Path(adapter_dir)))
        unknown = sorted(set(defaults) - set(settings))
        if unknown:
            raise SigngenError(f"unknown pipeline setting(s) {', '.join(unknown)}; known: {', '.join(settings)}")
        settings.update(defaults)
        pipeline = cls(frame_model, adapter, from_dict(PipelineDefaults, settings))
        pipeline.save_pretrained(out_dir)
        return pipeline


def load_pipeline(path: str | os.PathLike | None = None) -> SignPipeline:
    """The pipeline in folder ``path``, or the embedded default for ``None``."""
    if path is None:
        if not (DEFAULT_PIPELINE / MANIFEST_NAME).is_file():
            raise SigngenError(
                f"the embedded default model is missing ({DEFAULT_PIPELINE}); reinstall signgen or pass a pipeline folder (--model DIR)"
            )
        path = DEFAULT_PIPELINE
    return SignPipeline.from_pretrained(path)


def read_manifest(folder: Path) -> dict:
    """The validated manifest of a pipeline folder; the other signgen model folders are
    named, with the command that makes a pipeline of them."""
    config = folder / "config.json"
    if not (folder / MANIFEST_NAME).is_file() and config.is_file() and read_json_object(config).get("_class_name") == TemporalAdapter.__name__:
        raise SigngenError(f"{folder} is a temporal adapter folder, not a signgen pipeline; combine it with its frame model: signgen pipeline assemble FRAME_MODEL --adapter {folder} -o PIPELINE_DIR")
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file() and read_json_object(manifest_path, "manifest").get("kind") == FRAME_MODEL_KIND:
        raise SigngenError(f"{folder} is a signgen frame model folder, not a pipeline; build one with: signgen pipeline assemble {folder} -o PIPELINE_DIR")
    return read_model_manifest(folder, KIND, FORMAT_VERSION, "signgen pipeline")


# Settings newer than some saved pipelines: absent from a pipeline.json, they take their
# default, which is how such a pipeline rendered before they existed.
ADDED_SETTINGS = ("noise_correlation", "keep_coarse", "steady_torso", "deflicker")


def read_defaults(path: Path) -> PipelineDefaults:
    if not path.is_file():
        raise SigngenError(f"pipeline folder is incomplete: {path} is missing")
    try:
        before = {field.name: field.default for field in dataclasses.fields(PipelineDefaults) if field.name in ADDED_SETTINGS}
        return from_dict(PipelineDefaults, {**before, **read_json_object(path, "pipeline settings")})
    except SigngenError as error:
        raise SigngenError(f"{path}: {error}") from None


def _adapter_window_settings(adapter_dir: Path) -> dict:
    """Window size (the clip length) and overlap from a temporal training run's
    ``training_config.yaml``, found in ``adapter_dir`` or its parent; empty if absent."""
    import yaml

    for candidate in (adapter_dir / ADAPTER_TRAINING_CONFIG, adapter_dir.parent / ADAPTER_TRAINING_CONFIG):
        if candidate.is_file():
            try:
                config = yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}
                windows = config.get("windows", {})
                return {"window_size": int(config["train"]["num_frames"]), "overlap": int(windows["overlap"]),
                        "windows_per_batch": int(windows["windows_per_batch"])}
            except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError):
                raise SigngenError(f"{candidate} is not a readable temporal training config") from None
    return {}


# -------------------------------------------------------------------- writing


# The uncovered region grows by this many model pixels before the coarse image is kept around it.
KEEP_COARSE_GROW = 2


def keep_coarse_pixels(frames: torch.Tensor, coarse: tuple[torch.Tensor, torch.Tensor], grow: int = KEEP_COARSE_GROW) -> torch.Tensor:
    """``frames`` (T, 3, H, W) in [-1, 1] with the coarse image (``coarse``: images and
    uncovered masks, as :meth:`SignPipeline.coarse_images` gives them) kept wherever it
    covers the frame: the drawn frame shows only in its uncovered pixels, grown by ``grow``
    pixels, with a feathered edge. The coarse image is the photo's own pixels moved rigidly;
    a small model redraws them softer (docs/frame_model.md)."""
    import torch.nn.functional as F

    images, uncovered = (tensor.to(frames) for tensor in coarse)
    region = F.max_pool2d((uncovered > 0).float(), 2 * grow + 1, stride=1, padding=grow)
    weight = F.avg_pool2d(region, 3, stride=1, padding=1, count_include_pad=False)
    return images + weight * (frames - images)


def upscale_frames(frames: np.ndarray, size: tuple[int, int] = OUTPUT_SIZE, progress: bool = False) -> np.ndarray:
    """uint8 RGB frames (T, h, w, 3) resized to ``size`` (H, W) with a Lanczos filter."""
    from PIL import Image

    height, width = size
    if frames.shape[1:3] == (height, width):
        return frames
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    for index in tqdm(range(len(frames)), desc="upscaling", unit="frame", disable=not progress, leave=False):
        out[index] = np.asarray(Image.fromarray(frames[index]).resize((width, height), Image.Resampling.LANCZOS))
    return out


def write_render(result: RenderResult, path: str | os.PathLike, side_by_side: bool = False,
                 size: tuple[int, int] = OUTPUT_SIZE, progress: bool = False) -> Path:
    """Write ``result`` as an H.264 mp4 (a ``.gif`` path writes a GIF preview), frames
    upscaled to ``size`` (H, W; default PHOENIX's 260 x 210). ``side_by_side`` puts the
    driving pose's skeleton to the left of the generated frames. Written atomically: a
    failure leaves no partial file."""
    from signgen.video.io import write_gif, write_video

    path = Path(path)
    frames = upscale_frames(result.frames, size, progress=progress)
    if side_by_side:
        from signgen.poses.draw import draw_skeleton_frames
        from signgen.video.layout import side_by_side as lay_out

        skeleton = draw_skeleton_frames(result.pose, size=(size[1], size[0]))
        frames = lay_out([skeleton, frames], labels=["pose", "generated"])
    if path.suffix.lower() == ".gif":
        write_gif(frames, path, fps=result.fps)
    else:
        write_video(frames, path, fps=result.fps)
    return path

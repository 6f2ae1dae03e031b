"""A pipeline on disk: one folder, written and read here.

::

    model_index.json       {"kind": "signgen-pipeline", "format_version": 1, ...}
    pipeline.json          the render settings (signgen.pipelines.settings.RenderSettings)
    frame_model/           a frame-model folder (signgen.models.frame_model)
    temporal_adapter/      config.json + safetensors (signgen.models.temporal), optional
    hand_model/            the hand stage (signgen.models.hands), optional

:func:`read_training_outputs` finds the models in what the training commands write, for
``signgen pipeline assemble``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signgen import __version__
from signgen.atomic import atomic_folder, is_replaceable_folder
from signgen.errors import SigngenError
from signgen.files import MANIFEST_NAME, read_json_object, read_manifest
from signgen.models.frame_model import KIND as FRAME_MODEL_KIND
from signgen.models.frame_model import FrameModel
from signgen.models.temporal import TemporalAdapter, load_adapter
from signgen.pipelines.settings import RenderSettings

KIND = "signgen-pipeline"
FORMAT_VERSION = 1
SETTINGS_NAME = "pipeline.json"
FRAME_MODEL_FOLDER = "frame_model"
ADAPTER_FOLDER = "temporal_adapter"
HAND_MODEL_FOLDER = "hand_model"
# Folders written by the training commands that hold the model one level down.
FRAME_TRAINING_MODEL = "model"
ADAPTER_TRAINING_CONFIG = "config.yaml"


def save_pipeline_folder(folder: Path, models: PipelineModels, settings: RenderSettings) -> Path:
    """Write the pipeline folder atomically; an existing pipeline folder is replaced, any
    other existing folder refused."""
    frame_model, adapter = models.frame_model, models.temporal_adapter
    if folder.exists() and not is_replaceable_folder(folder, MANIFEST_NAME, KIND):
        raise SigngenError(f"refusing to overwrite {folder}: it exists and is not a signgen pipeline folder")
    with atomic_folder(folder) as tmp:
        frame_model.save_pretrained(tmp / FRAME_MODEL_FOLDER)
        if adapter is not None:
            adapter.save_pretrained(tmp / ADAPTER_FOLDER, safe_serialization=True)
        if models.hand_model is not None:
            models.hand_model.save_pretrained(tmp / HAND_MODEL_FOLDER)
        (tmp / SETTINGS_NAME).write_text(json.dumps(settings.to_dict(), indent=2) + "\n", encoding="utf-8")
        manifest = {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "signgen_version": __version__,
            "frame_model": FRAME_MODEL_FOLDER,
            "temporal_adapter": ADAPTER_FOLDER if adapter is not None else None,
            "hand_model": HAND_MODEL_FOLDER if models.hand_model is not None else None,
            "resolution": list(frame_model.resolution),
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return folder


@dataclass
class PipelineModels:
    """The models of a pipeline: the frame model, and optionally a temporal adapter and a
    hand stage."""

    frame_model: FrameModel
    temporal_adapter: TemporalAdapter | None = None
    hand_model: Any = None  # signgen.models.hands.HandModel


def load_pipeline_folder(folder: Path) -> tuple[PipelineModels, RenderSettings]:
    """The models and settings of a pipeline folder; a folder of another kind (a frame
    model, a temporal adapter, anything else) or any damage is one SigngenError line."""
    manifest = read_pipeline_manifest(folder)
    frame_model = FrameModel.from_pretrained(folder / FRAME_MODEL_FOLDER)
    adapter = hands = None
    if manifest.get("temporal_adapter"):
        adapter = load_adapter(_present(folder / ADAPTER_FOLDER))
    if manifest.get("hand_model"):
        from signgen.models.hands import load_hand_model

        hands = load_hand_model(_present(folder / HAND_MODEL_FOLDER))
    return PipelineModels(frame_model, adapter, hands), read_settings(folder / SETTINGS_NAME)


def _present(part: Path) -> Path:
    if not part.is_dir():
        raise SigngenError(f"pipeline folder is incomplete: {part} is missing")
    return part


def read_pipeline_manifest(folder: Path) -> dict:
    """The validated manifest of a pipeline folder; the other signgen model folders are
    named, with the command that makes a pipeline of them."""
    config = folder / "config.json"
    if not (folder / MANIFEST_NAME).is_file() and config.is_file() and read_json_object(config).get("_class_name") == TemporalAdapter.__name__:
        raise SigngenError(f"{folder} is a temporal adapter folder, not a signgen pipeline; combine it with its frame model: signgen pipeline assemble FRAME_MODEL --adapter {folder} -o PIPELINE_DIR")
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file() and read_json_object(manifest_path, "manifest").get("kind") == FRAME_MODEL_KIND:
        raise SigngenError(f"{folder} is a signgen frame model folder, not a pipeline; build one with: signgen pipeline assemble {folder} -o PIPELINE_DIR")
    return read_manifest(folder, KIND, FORMAT_VERSION, "signgen pipeline")


def read_settings(path: Path) -> RenderSettings:
    """The render settings of ``pipeline.json`` (:meth:`RenderSettings.from_saved`)."""
    if not path.is_file():
        raise SigngenError(f"pipeline folder is incomplete: {path} is missing")
    try:
        return RenderSettings.from_saved(read_json_object(path, "pipeline settings"))
    except SigngenError as error:
        raise SigngenError(f"{path}: {error}") from None


def check_not_inside(folder: Path, inputs: list[Path | None]) -> None:
    """Refuse to write the pipeline folder ``folder`` where it would replace one of its
    ``inputs`` (the folder itself, or a folder holding it): the models would be read from
    what is being replaced."""
    out = folder.resolve()
    for given in inputs:
        if given is not None and (given.resolve() == out or out in given.resolve().parents):
            raise SigngenError(f"the pipeline folder {folder} holds an input ({given}); write the pipeline elsewhere")


def read_training_outputs(frame_model_dir: Path, adapter_dir: Path | None, hand_dir: Path | None = None) -> tuple[PipelineModels, dict]:
    """The frame model in ``frame_model_dir`` (a frame-model folder or a ``signgen train
    diffusion`` output folder), the adapter in ``adapter_dir`` (an adapter folder, a
    ``signgen train temporal`` output folder, or ``None``), the hand stage in ``hand_dir``
    (a hand-model folder or a ``signgen train hands`` output folder, or ``None``) and the
    window settings of the adapter's training config when it is found beside it."""
    if (frame_model_dir / FRAME_TRAINING_MODEL / MANIFEST_NAME).is_file():
        frame_model_dir = frame_model_dir / FRAME_TRAINING_MODEL
    models = PipelineModels(FrameModel.from_pretrained(frame_model_dir))
    if hand_dir is not None:
        from signgen.models.hands import load_hand_model

        models.hand_model = load_hand_model(hand_dir)
    if adapter_dir is None:
        return models, {}
    models.temporal_adapter = load_adapter(adapter_dir)
    return models, _adapter_window_settings(adapter_dir)


def _adapter_window_settings(adapter_dir: Path) -> dict:
    """Window size (the clip length) and overlap from a temporal training run's
    ``config.yaml``, found in ``adapter_dir`` or its parent; empty if absent."""
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

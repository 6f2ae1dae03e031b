"""Tiny random-weight render pipelines for tests/test_pipeline.py and tests/test_cli_render.py."""

from __future__ import annotations

from pathlib import Path

from temporal_helpers import ADAPTER_OPTIONS, randomize_, tiny_frame_model

# Small windows, so that a 12-frame render crosses a window boundary.
TINY_SETTINGS = {"num_steps": 2, "window_size": 8, "overlap": 2, "frame_batch_size": 8}


def build_tiny_pipelines(root: Path) -> dict[str, Path]:
    """Training-output-like folders and pipelines built from them, under ``root``:
    ``frame_model`` and ``adapter`` (what the training commands write), ``frame_only`` (a
    pipeline without adapter) and ``with_adapter`` (with a randomised, non-identity one)."""
    from signgen.pipelines.pipeline import SignPipeline
    from signgen.models.temporal import TemporalAdapter

    model = tiny_frame_model()
    frame_dir = model.save_pretrained(root / "frame_model")
    adapter = randomize_(TemporalAdapter.for_unet(model.unet, **ADAPTER_OPTIONS))
    adapter_dir = root / "adapter"
    adapter.save_pretrained(adapter_dir, safe_serialization=True)
    SignPipeline.assemble(frame_dir, None, root / "frame_only", **TINY_SETTINGS)
    SignPipeline.assemble(frame_dir, adapter_dir, root / "with_adapter", **TINY_SETTINGS)
    return {"frame_model": frame_dir, "adapter": adapter_dir, "frame_only": root / "frame_only",
            "with_adapter": root / "with_adapter"}

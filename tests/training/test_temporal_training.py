"""Stage 3 through the driver: checkpoints, refusal without --resume, a loadable adapter."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from signgen.config import CONFIG_FOLDER, load_temporal_config
from signgen.errors import SigngenError
from signgen.models.temporal import load_adapter
from signgen.training.temporal import train_temporal


def test_training_saves_resumes_and_produces_a_loadable_adapter(tmp_path, monkeypatch, tiny_frame_model):
    model = tiny_frame_model()
    model.save_pretrained(tmp_path / "frame-model")
    height, width = model.resolution

    def clip_dataset(corpus, split, num_frames=16, resolution=(64, 52), **_):
        assert split == "train" and tuple(resolution) == (height, width)
        pose_channels = model.pose_channels
        generator = torch.Generator().manual_seed(0)
        return [
            {
                "source": torch.rand(3, height, width, generator=generator) * 2 - 1,
                "frames": torch.rand(num_frames, 3, height, width, generator=generator) * 2 - 1,
                "poses": torch.rand(num_frames, pose_channels, height, width, generator=generator),
            }
            for _ in range(4)
        ]

    monkeypatch.setitem(sys.modules, "signgen.corpora.samplers", types.SimpleNamespace(clip_dataset=clip_dataset))
    overrides = ["train.max_steps=2", "train.checkpoint_every=1", "train.batch_size=2", "train.num_frames=3", "train.log_every=1", "windows.overlap=1"]
    config = load_temporal_config(CONFIG_FOLDER / "temporal-tiny.yaml", overrides)
    config.adapter.levels = [1]
    out = tmp_path / "run"
    first = train_temporal(tmp_path / "frame-model", "unused", out, config, progress=False)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-0000001", "step-0000002"]
    with pytest.raises(SigngenError, match="--resume"):
        train_temporal(tmp_path / "frame-model", "unused", out, config, progress=False)

    config.train.max_steps = 3
    resumed = train_temporal(tmp_path / "frame-model", "unused", out, config, resume=True, progress=False)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert (out / "model" / "config.json").is_file() and (out / "config.yaml").is_file()
    loaded = load_adapter(out)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), resumed.state_dict().values()))
    moved = [name for name, p in first.named_parameters() if ".proj_out." in name and p.abs().sum() > 0]
    assert moved, "training left every proj_out at zero"


def test_a_v2_frame_model_trains_its_adapter_on_clips_with_coarse_images(tiny_frame_model, tiny_adapter, synthsign_corpus):
    from signgen.corpora.samplers import clip_dataset
    from signgen.models.temporal import VideoUNet
    from signgen.training.temporal import temporal_loss

    model = tiny_frame_model(0, "model.coarse_image=true", "model.reference_attention=true", "model.coarse_residual=true")
    model.requires_grad_(False)
    clips = clip_dataset(synthsign_corpus, "train", num_frames=3, resolution=model.resolution, coarse_image=True)
    batch = {key: torch.stack([clips[i][key] for i in range(2)]) for key in clips[0]}
    assert batch["coarse"].shape == batch["frames"].shape and batch["uncovered"].shape == (2, 3, 1, *model.resolution)
    adapter = tiny_adapter(model, randomized=True)
    config = load_temporal_config(CONFIG_FOLDER / "temporal-tiny.yaml", [])
    video_unet = VideoUNet(model.unet, adapter)
    loss = temporal_loss(model, video_unet, batch, config.train, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in model.parameters())
    assert sum(p.grad.abs().sum() for p in adapter.parameters() if p.grad is not None) > 0
    # Weighted up on the clips' hands: the same draws (noise, timesteps, condition dropout), a larger loss.
    weighted = load_temporal_config(CONFIG_FOLDER / "temporal-tiny.yaml", ["train.hand_loss_weight=4"])
    losses = []
    for train in (config.train, weighted.train):
        torch.manual_seed(1)
        with torch.no_grad():
            losses.append(temporal_loss(model, video_unet, batch, train, torch.Generator().manual_seed(0)))
    assert losses[1] > losses[0] * 1.01

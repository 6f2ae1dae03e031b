"""Stages 1 and 2 of the frame model through the driver: outputs, frozen stage 1, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.training.driver import list_checkpoints
from signgen.training.frame import train_diffusion, train_fusion


@pytest.fixture
def random_pairs(tiny_frame_config):
    """``random_pairs(size, seed=0)``: random source, target and pose maps of the tiny model's size."""
    config = tiny_frame_config().model
    height, width = config.resolution

    def make(size: int, seed: int = 0) -> list[dict]:
        generator = torch.Generator().manual_seed(seed)
        return [
            {
                "source": torch.rand(3, height, width, generator=generator) * 2 - 1,
                "target": torch.rand(3, height, width, generator=generator) * 2 - 1,
                "target_pose": torch.rand(config.pose_channels, height, width, generator=generator),
            }
            for _ in range(size)
        ]

    return make


def read_log(folder):
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]


def test_training_runs_end_to_end_through_both_stages(tmp_path, tiny_frame_config, random_pairs, sample_frames):
    config = tiny_frame_config(
        "train_fusion.max_steps=4", "train_fusion.checkpoint_every=2", "train_fusion.checkpoints_keep=1",
        "train_fusion.log_every=2", "train_fusion.eval_every=2", "train_fusion.batch_size=4", "train_fusion.eval_batch_size=4",
        "train_diffusion.max_steps=3", "train_diffusion.checkpoint_every=2", "train_diffusion.log_every=1", "train_diffusion.batch_size=4",
    )
    model = FrameModel.from_config(config.model, with_denoiser=False)
    result = train_fusion(model, random_pairs(12), tmp_path / "fusion", config.train_fusion, eval_dataset=random_pairs(8, seed=5), progress=False)
    assert result.steps == 4 and result.model_folder == tmp_path / "fusion" / "model"
    log = read_log(tmp_path / "fusion")
    assert [r["step"] for r in log if "loss" in r] == [2, 4]
    assert [r["step"] for r in log if "eval_top1" in r] == [2, 4]
    assert all({"lr", "elapsed_s"} <= r.keys() for r in log if "loss" in r)
    assert [c.name for c in list_checkpoints(tmp_path / "fusion")] == ["step-0000004"]  # only the last one kept
    assert "train_fusion" in (tmp_path / "fusion" / "config.yaml").read_text()

    stage1 = FrameModel.from_pretrained(result.model_folder)
    assert not stage1.has_denoiser
    stage1.attach_denoiser(config.model)
    encoder_before = {k: v.clone() for k, v in stage1.image_encoder.state_dict().items()}
    result = train_diffusion(stage1, random_pairs(12), tmp_path / "diffusion", config.train_diffusion, progress=False)
    assert [r["step"] for r in read_log(tmp_path / "diffusion")] == [1, 2, 3]
    final = FrameModel.from_pretrained(result.model_folder)
    assert all(torch.equal(final.image_encoder.state_dict()[k], v) for k, v in encoder_before.items()), "stage 1 must stay frozen"
    height, width = config.model.resolution
    frames = sample_frames(final, torch.zeros(3, height, width), torch.rand(2, config.model.pose_channels, height, width), num_steps=2)
    assert frames.shape == (2, 3, height, width)


def test_training_refuses_bad_data(tmp_path, tiny_frame_config, random_pairs):
    config = tiny_frame_config("train_fusion.batch_size=8").train_fusion

    def model():
        return FrameModel.from_config(tiny_frame_config().model, with_denoiser=False)

    with pytest.raises(SigngenError, match="fewer than batch_size"):
        train_fusion(model(), random_pairs(4), tmp_path / "a", config, progress=False)
    wrong_keys = [{"image": item["source"], "pose": item["target_pose"]} for item in random_pairs(8)]
    with pytest.raises(SigngenError, match="source, target, target_pose"):
        train_fusion(model(), wrong_keys, tmp_path / "b", config, progress=False)
    with pytest.raises(SigngenError, match="nothing to resume"):
        train_fusion(model(), random_pairs(8), tmp_path / "c", config, resume=True, progress=False)


def test_hand_boxes_cover_the_hands_of_real_pose_maps_and_little_else(gsg_pose):
    from signgen.poses import skeleton
    from signgen.poses.holistic import pose_arrays, reduce_to_178
    from signgen.poses.raster import rasterize_pose
    from signgen.training.frame import hand_regions_of_pose_maps

    pose = reduce_to_178(gsg_pose)
    xy, confidence = pose_arrays(pose)
    frame = int(np.flatnonzero((confidence[:, skeleton.RIGHT_HAND] > 0).all(1))[0])  # a frame showing the signing hand
    height, width = 128, 104
    maps = torch.from_numpy(rasterize_pose(pose, (height, width))[frame : frame + 1])
    boxes = hand_regions_of_pose_maps(maps, (height, width))[0, 0]
    dims = pose.header.dimensions
    points = xy[frame, skeleton.RIGHT_HAND] * [width / dims.width, height / dims.height]
    columns, rows = np.round(points).astype(int).clip(0, [width - 1, height - 1]).T
    assert boxes[rows, columns].all(), "every keypoint of the shown hand lies in its box"
    assert 0 < boxes.mean() < 0.15, "the boxes are the hands, not the frame"
    shoulders = xy[frame, skeleton.SHOULDERS].mean(0) * [width / dims.width, height / dims.height]
    assert boxes[int(shoulders[1]), int(shoulders[0])] == 0
    latent = hand_regions_of_pose_maps(maps, (height // 8, width // 8))[0, 0]
    assert latent[rows // 8, columns // 8].all(), "a latent cell counts when any pixel it covers does"


def test_hand_weighted_loss_weights_only_the_hand_boxes():
    from signgen.poses.raster import RIGHT_HAND_CHANNEL
    from signgen.training.frame import hand_weighted_mse

    maps = torch.zeros(1, 4, 32, 32)
    maps[0, RIGHT_HAND_CHANNEL, 4:6, 4:6] = 1.0  # a hand in the top left corner
    target = torch.zeros(1, 3, 32, 32)
    in_hand, elsewhere = target.clone(), target.clone()
    in_hand[..., 5, 5] = 1.0
    elsewhere[..., 25, 25] = 1.0
    for prediction in (in_hand, elsewhere):
        assert torch.equal(hand_weighted_mse(prediction, target, maps, 0.0), F.mse_loss(prediction, target))
    assert torch.allclose(hand_weighted_mse(in_hand, target, maps, 3.0), 4 * F.mse_loss(in_hand, target))
    assert torch.allclose(hand_weighted_mse(elsewhere, target, maps, 3.0), F.mse_loss(elsewhere, target))


def test_hand_loss_weight_trains_and_is_checked(tmp_path, tiny_frame_config, random_pairs):
    with pytest.raises(SigngenError, match="hand_loss_weight must be 0 or more"):
        tiny_frame_config("train_diffusion.hand_loss_weight=-1")
    config = tiny_frame_config("train_diffusion.max_steps=2", "train_diffusion.batch_size=4", "train_diffusion.hand_loss_weight=4")
    model = FrameModel.from_config(config.model)
    result = train_diffusion(model, random_pairs(8), tmp_path / "diffusion", config.train_diffusion, progress=False)
    assert result.steps == 2 and all(np.isfinite(r["loss"]) for r in read_log(tmp_path / "diffusion"))

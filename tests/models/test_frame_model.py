"""The frame model: encoders, fusion (stage 1), denoiser (stage 2), save/load, inputs (training: tests/training)."""

from __future__ import annotations

import functools
import json
import shutil

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from signgen.config import CONFIG_FOLDER, load_frame_config
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.pipelines.signer_image import load_signer_image
from signgen.training.frame import FusionObjective, evaluate_fusion

from sd_configs import SD_VAE_CONFIG

TINY = CONFIG_FOLDER / "frame-tiny.yaml"
PHOENIX = CONFIG_FOLDER / "frame-phoenix.yaml"
@pytest.fixture(scope="session")
def micro_config(tiny_frame_config):
    """The 32 x 24 tiny config, then overrides."""
    return functools.partial(tiny_frame_config, size="32x24")


@pytest.fixture(scope="session")
def micro_model(tiny_frame_model):
    """``micro_model(seed=0, *overrides, with_denoiser=True)``: the 32 x 24 tiny model as it
    starts training (pose path zero, train mode)."""
    return functools.partial(tiny_frame_model, size="32x24", pose_path=False, train=True)


class ShapePairs(Dataset):
    """A stand-in corpus: each 'signer' is a background and square colour; the 'pose' is
    the square's position, drawn as a small blob in pose channel 0. Source and target
    are the same signer at two positions."""

    def __init__(self, size: int, resolution=(32, 24), pose_channels: int = 4, signers: int = 6, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.height, self.width = resolution
        self.pose_channels = pose_channels
        self.colours = torch.rand(signers, 2, 3, generator=generator) * 2 - 1
        self.items = [
            (int(torch.randint(signers, (1,), generator=generator)), torch.rand(2, generator=generator), torch.rand(2, generator=generator))
            for _ in range(size)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def frame(self, signer: int, position: torch.Tensor):
        side = self.height // 4
        image = self.colours[signer, 0].view(3, 1, 1).repeat(1, self.height, self.width)
        y, x = int(position[0] * (self.height - side)), int(position[1] * (self.width - side))
        image[:, y : y + side, x : x + side] = self.colours[signer, 1].view(3, 1, 1)
        pose = torch.zeros(self.pose_channels, self.height, self.width)
        pose[0, y + side // 4 : y + 3 * side // 4, x + side // 4 : x + 3 * side // 4] = 1.0
        return image, pose

    def __getitem__(self, index: int) -> dict:
        signer, source_position, target_position = self.items[index]
        source, _ = self.frame(signer, source_position)
        target, pose = self.frame(signer, target_position)
        return {"source": source, "target": target, "target_pose": pose}


def batch_of(dataset: Dataset, size: int) -> dict:
    items = [dataset[i] for i in range(size)]
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


# ------------------------------------------------------------------- building


def test_tiny_config_builds_and_runs_one_frame():
    config = load_frame_config(TINY)
    model = FrameModel.from_config(config.model).eval()
    assert model.resolution == (64, 52) and model.sample_shape == (3, 64, 52)
    dataset = ShapePairs(2, resolution=(64, 52))
    batch = batch_of(dataset, 2)
    with torch.no_grad():
        appearance = model.encode_appearance(batch["source"])
        conditions = model.frame_conditions(appearance, batch["target_pose"])
        output = model.predict(batch["target"], torch.tensor([10, 900]), conditions)
    assert output.shape == (2, 3, 64, 52)
    assert conditions.appearance_tokens.shape[:2] == (2, 1 + 16 * 13)


def test_phoenix_config_builds_v2_on_a_stable_diffusion_vae_without_allocating(tmp_path, capsys):
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "config.json").write_text(json.dumps(SD_VAE_CONFIG))  # no weights: none are read
    with pytest.raises(SigngenError, match="--set model.latent.vae_path=DIR"):
        load_frame_config(PHOENIX)
    config = load_frame_config(PHOENIX, [f"model.latent.vae_path={tmp_path / 'vae'}"])
    with torch.device("meta"):
        model = FrameModel.from_config(config.model)
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in model.components().items()}
    with capsys.disabled():
        print("\nfrom PHOENIX config, parameters (millions):", {k: round(v / 1e6, 1) for k, v in counts.items()}, f"total {sum(counts.values()) / 1e6:.1f}")
    assert all(p.is_meta for p in model.parameters())
    assert model.coarse_image and model.reference_attention and model.coarse_residual
    assert model.sample_shape == (4, 64, 52)  # 512 x 416 frames in the VAE's 8x smaller latent space
    # sample + pose maps + coarse latent and its uncovered mask
    assert model.unet.config.in_channels == 4 + 4 + 5 and model.unet.config.class_embed_type == "projection"
    assert 500e6 < sum(counts.values()) < 2e9


def test_a_vae_folder_of_another_kind_is_one_line(tmp_path, micro_model):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(SigngenError, match="holds a UNet2DConditionModel, not an AutoencoderKL"):
        micro_model(0, f"model.latent.vae_path={tmp_path / 'unet'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SigngenError, match="not a diffusers autoencoder folder"):
        micro_model(0, f"model.latent.vae_path={tmp_path / 'empty'}")


def test_fusion_embedding_is_normalised_and_depends_on_the_pose(micro_model):
    model = micro_model().eval()
    batch = batch_of(ShapePairs(4), 4)
    with torch.no_grad():
        appearance = model.encode_appearance(batch["source"][:1])
        fused = model.fuse(appearance.embedding, batch["target_pose"])
    assert fused.shape == (4, 32)
    assert torch.allclose(fused.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(fused[0], fused[1])


# ---------------------------------------------------------------- pose path


def test_zero_initialised_pose_path_leaves_the_unet_unchanged(micro_model):
    model = micro_model().eval()
    batch = batch_of(ShapePairs(3), 3)
    with torch.no_grad():
        conditions = model.frame_conditions(model.encode_appearance(batch["source"]), batch["target_pose"])
        noisy = torch.randn(3, 3, 32, 24)
        timesteps = torch.tensor([5, 400, 950])
        with_pose = model.predict(noisy, timesteps, conditions)

        # The same UNet without pose input channels: conv_in reads the sample channels only.
        plain_config = dict(model.unet.config)
        plain_config["in_channels"] = 3
        plain = UNet2DConditionModel.from_config(plain_config).eval()
        state = model.unet.state_dict()
        state["conv_in.weight"] = state["conv_in.weight"][:, :3]
        plain.load_state_dict(state)
        without_pose = plain(
            noisy, timesteps, encoder_hidden_states=conditions.appearance_tokens, class_labels=conditions.fusion_embedding
        ).sample
    assert model.unet.conv_in.weight[:, 3:].abs().sum() == 0
    assert torch.equal(with_pose, without_pose)


def test_pose_path_learns_a_gradient(micro_model):
    model = micro_model()
    batch = batch_of(ShapePairs(2), 2)
    conditions = model.frame_conditions(model.encode_appearance(batch["source"]), batch["target_pose"])
    model.predict(torch.randn(2, 3, 32, 24), torch.tensor([100, 200]), conditions).pow(2).mean().backward()
    assert model.unet.conv_in.weight.grad[:, 3:].abs().sum() > 0


# ------------------------------------------------------------------ stage 1


def test_stage1_loss_falls_on_a_tiny_batch(micro_model):
    model = micro_model()
    objective = FusionObjective(model, source_enhancement=True).train()
    batch = batch_of(ShapePairs(16), 16)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    # Chance level of the 32-way source-enhanced InfoNCE is ln 32 = 3.47.
    # Telling the 6 signers apart alone plateaus near 1.8 here; below it the pose is used.
    assert losses[0] > 2.5
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert np.mean(losses[-5:]) < 1.2


def test_retrieval_accuracy_is_reported_on_held_out_pairs(micro_model):
    model = micro_model()
    metrics = evaluate_fusion(model, ShapePairs(20, seed=3), batch_size=8)
    assert metrics["eval_pairs"] == 20
    assert 0.0 <= metrics["eval_top1"] <= metrics["eval_top5"] <= 1.0


# ------------------------------------------------------------- save / load


def test_save_then_load_gives_bit_identical_samples(tmp_path, micro_model, sample_frames):
    model = micro_model(seed=1).eval()
    with torch.no_grad():
        model.unet.conv_in.weight[:, 3:].normal_(0, 0.1)  # let the pose matter
    batch = batch_of(ShapePairs(3), 3)
    before = sample_frames(model, batch["source"][0], batch["target_pose"], num_steps=3, seed=7)
    model.save_pretrained(tmp_path / "model")
    loaded = FrameModel.from_pretrained(tmp_path / "model")
    after = sample_frames(loaded, batch["source"][0], batch["target_pose"], num_steps=3, seed=7)
    assert torch.equal(before, after)
    manifest = json.loads((tmp_path / "model" / "model_index.json").read_text())
    assert manifest["kind"] == "signgen-frame-model"
    assert not list(tmp_path.glob(".model.*")), "temporary folders left behind"
    assert not list((tmp_path / "model").rglob("*.bin")) and not list((tmp_path / "model").rglob("*.pt"))


def test_a_patched_unet_denoises_full_size_pixels_and_survives_a_round_trip(tmp_path, micro_model, sample_frames):
    model = micro_model(2, "model.unet.patch_size=2", "model.unet.block_out_channels=[16, 32]",
                        "model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
                        "model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]").eval()
    assert model.patch_size == 2 and list(model.unet.config.sample_size) == [16, 12]
    assert model.unet.config.in_channels == (3 + 4) * 4 and model.unet.config.out_channels == 3 * 4
    # The pose path starts at zero in the folded layout too: every pose channel, no sample channel.
    weights = model.unet.conv_in.weight
    assert weights[:, 12:].abs().sum() == 0 and weights[:, :12].abs().sum() > 0
    with torch.no_grad():
        weights[:, 12:].normal_(0, 0.1)
    batch = batch_of(ShapePairs(2), 2)
    before = sample_frames(model, batch["source"][0], batch["target_pose"], num_steps=2, seed=3)
    assert before.shape == (2, 3, 32, 24)
    model.save_pretrained(tmp_path / "model")
    loaded = FrameModel.from_pretrained(tmp_path / "model")
    assert loaded.patch_size == 2
    assert torch.equal(before, sample_frames(loaded, batch["source"][0], batch["target_pose"], num_steps=2, seed=3))
    with pytest.raises(SigngenError, match="patch size 2 and 2 UNet levels need sides divisible by 4"):
        micro_model(0, "model.resolution=[30, 24]", "model.unet.patch_size=2", "model.unet.block_out_channels=[16, 32]",
                    "model.unet.down_block_types=[DownBlock2D, CrossAttnDownBlock2D]",
                    "model.unet.up_block_types=[CrossAttnUpBlock2D, UpBlock2D]")


def test_save_replaces_a_model_folder_but_refuses_other_folders(tmp_path, micro_model):
    model = micro_model(with_denoiser=False)
    model.save_pretrained(tmp_path / "model")
    model.save_pretrained(tmp_path / "model")  # replacing an older model is fine
    assert not (tmp_path / "model" / "unet").exists()
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "me.jpg").write_bytes(b"x")
    with pytest.raises(SigngenError, match="refusing to overwrite"):
        model.save_pretrained(tmp_path / "photos")
    assert (tmp_path / "photos" / "me.jpg").exists()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory, micro_model):
    folder = tmp_path_factory.mktemp("saved") / "model"
    micro_model().save_pretrained(folder)
    return folder


def broken_copy(saved_model, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(saved_model, folder)
    return folder


def corrupt_missing_weights(folder, tmp_path, micro_model):
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()


def corrupt_missing_manifest(folder, tmp_path, micro_model):
    (folder / "model_index.json").unlink()


def corrupt_other_kind(folder, tmp_path, micro_model):
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))


def corrupt_garbage_weights(folder, tmp_path, micro_model):
    (folder / "fusion" / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00not safetensors at all")


def corrupt_mismatched_weights(folder, tmp_path, micro_model):
    # A UNet weight file from a model of another size.
    other = tmp_path / "other"
    micro_model(0, "model.unet.block_out_channels=[8, 16, 16]").save_pretrained(other)
    shutil.copy(other / "unet" / "diffusion_pytorch_model.safetensors", folder / "unet" / "diffusion_pytorch_model.safetensors")


def corrupt_missing_tensor(folder, tmp_path, micro_model):
    path = folder / "pose_encoder" / "diffusion_pytorch_model.safetensors"
    state = load_file(path)
    state.pop("projection.weight")
    save_file(state, path)


def corrupt_mismatched_config(folder, tmp_path, micro_model):
    # The fusion module of another embedding size, config and weights both: each loads, they do not fit.
    other = tmp_path / "other"
    micro_model(0, "model.fusion.embed_dim=16").save_pretrained(other)
    shutil.rmtree(folder / "fusion")
    shutil.copytree(other / "fusion", folder / "fusion")


def corrupt_bad_json(folder, tmp_path, micro_model):
    (folder / "unet" / "config.json").write_text("{ truncated")


def corrupt_unknown_class(folder, tmp_path, micro_model):
    manifest = json.loads((folder / "model_index.json").read_text())
    manifest["components"]["unet"] = "os.system"
    (folder / "model_index.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (corrupt_missing_weights, "is missing"),
        (corrupt_missing_manifest, "not a signgen frame model"),
        (corrupt_other_kind, "not a signgen frame model folder"),
        (corrupt_garbage_weights, "not a readable safetensors"),
        (corrupt_mismatched_weights, "does not match"),
        (corrupt_missing_tensor, "missing, e.g. projection.weight"),
        (corrupt_mismatched_config, "do not fit together"),
        (corrupt_bad_json, "not readable JSON"),
        (corrupt_unknown_class, "expected UNet2DConditionModel"),
    ],
)
def test_bad_model_folders_are_one_line_errors(saved_model, tmp_path, corrupt, message, micro_model):
    folder = broken_copy(saved_model, tmp_path)
    corrupt(folder, tmp_path, micro_model)
    with pytest.raises(SigngenError, match=message) as error:
        FrameModel.from_pretrained(folder)
    assert "\n" not in str(error.value)


def test_missing_model_folder_is_a_user_error(tmp_path):
    with pytest.raises(SigngenError, match="not found"):
        FrameModel.from_pretrained(tmp_path / "nothing")


def test_stage1_only_model_refuses_to_sample(tmp_path, micro_model, sample_frames):
    model = micro_model(with_denoiser=False)
    model.save_pretrained(tmp_path / "fusion")
    loaded = FrameModel.from_pretrained(tmp_path / "fusion")
    assert not loaded.has_denoiser
    with pytest.raises(SigngenError, match="train the denoiser first"):
        sample_frames(loaded, torch.zeros(3, 32, 24), torch.zeros(1, 4, 32, 24))
    from signgen.pipelines.pipeline import SignPipeline

    with pytest.raises(SigngenError, match="train the denoiser first"):
        SignPipeline(loaded)


# --------------------------------------------------- other backbones, latents


def test_clip_backbone_from_a_local_folder(tmp_path, micro_config):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=8))
    clip.save_pretrained(tmp_path / "clip")
    config = micro_config("model.encoder.backbone=clip", f"model.encoder.clip_path={tmp_path / 'clip'}")
    model = FrameModel.from_config(config.model).eval()
    loaded = model.image_encoder.transformer.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in clip.state_dict().items())
    image = torch.rand(1, 3, 32, 24) * 2 - 1
    with torch.no_grad():
        tokens = model.encode_appearance(image).tokens
    assert tokens.shape == (1, 1 + 16, 32)
    model.save_pretrained(tmp_path / "model")  # the CLIP weights travel inside the model folder
    shutil.rmtree(tmp_path / "clip")
    with torch.no_grad():
        assert torch.equal(FrameModel.from_pretrained(tmp_path / "model").encode_appearance(image).tokens, tokens)
    with pytest.raises(SigngenError, match="CLIP weights folder not found"):
        FrameModel.from_config(config.model)


def test_latent_space_with_a_local_vae(tmp_path, micro_model, sample_frames):
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
    )
    vae.save_pretrained(tmp_path / "vae")
    model = micro_model(0, f"model.latent.vae_path={tmp_path / 'vae'}").eval()
    assert model.sample_shape == (4, 16, 12)
    assert model.unet.config.in_channels == 4 + 4
    frames = sample_frames(model, torch.zeros(3, 32, 24), torch.rand(2, 4, 32, 24), num_steps=2)
    assert frames.shape == (2, 3, 32, 24)
    model.save_pretrained(tmp_path / "model")
    assert FrameModel.from_pretrained(tmp_path / "model").vae is not None


# --------------------------------------------------------------- signer image


def test_signer_image_conversions():
    rgba = np.zeros((40, 30, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:20, :, 3] = 255  # top half opaque red, bottom half transparent
    image = load_signer_image(rgba, (40, 30))
    assert image.shape == (3, 40, 30) and image.dtype == torch.float32
    assert torch.allclose(image[:, 5, 15], torch.tensor([1.0, -1.0, -1.0]))
    assert torch.allclose(image[:, 35, 15], torch.ones(3))  # composited on white

    gray = np.full((50, 40), 64, dtype=np.uint8)
    converted = load_signer_image(gray, (32, 24))
    assert converted.shape == (3, 32, 24)
    assert torch.equal(converted[0], converted[1]) and torch.equal(converted[1], converted[2])

    wide = np.zeros((40, 120, 3), dtype=np.uint8)
    wide[:, :, 1] = 200
    padded = load_signer_image(wide, (32, 24), fit="pad")
    cropped = load_signer_image(wide, (32, 24), fit="crop")
    assert padded.shape == cropped.shape == (3, 32, 24)
    assert padded.min() >= -1 and padded.max() <= 1


def test_huge_signer_image_is_converted():
    huge = Image.new("L", (8000, 8000), color=128)
    image = load_signer_image(huge, (64, 52))
    assert image.shape == (3, 64, 52)
    assert torch.allclose(image, torch.full_like(image, 128 / 127.5 - 1), atol=1e-2)


def test_signer_image_from_files(tmp_path):
    Image.new("RGBA", (60, 80), (0, 0, 255, 0)).save(tmp_path / "clear.png")
    assert torch.allclose(load_signer_image(tmp_path / "clear.png", (32, 24)), torch.ones(3, 32, 24))
    sixteen = np.full((40, 30), 65535, dtype=np.uint16)
    Image.fromarray(sixteen).save(tmp_path / "deep.png")
    assert torch.allclose(load_signer_image(tmp_path / "deep.png", (32, 24)), torch.ones(3, 32, 24))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: Image.new("RGB", (1, 1)), "at least 16 px"),
        (lambda tmp: Image.new("L", (12000, 40)), "at most 10000 px"),
        (lambda tmp: Image.new("RGB", (2000, 40)), "too elongated"),
        (lambda tmp: np.zeros((40, 30, 3), dtype=np.float32), "must be uint8"),
        (lambda tmp: "a photo", "not found"),
        (lambda tmp: tmp / "missing.png", "not found"),
        (lambda tmp: (tmp / "notes.png").write_text("not an image") and tmp / "notes.png", "not an image"),
        (lambda tmp: (tmp / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20) and tmp / "cut.png", "not an image|cannot read"),
        (lambda tmp: 42, "unsupported signer image"),
    ],
)
def test_bad_signer_images_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(SigngenError, match=message) as error:
        load_signer_image(make(tmp_path), (32, 24))
    assert "\n" not in str(error.value)


def test_tiny_saved_file_on_disk_is_refused(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(SigngenError, match="1x1 px"):
        load_signer_image(tmp_path / "dot.png", (32, 24))

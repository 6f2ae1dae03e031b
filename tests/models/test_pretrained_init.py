"""model.init_from: the denoiser started from a (tiny) Stable Diffusion UNet saved by the test."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel

from sd_configs import SD15_UNET_CONFIG, SD_VAE_CONFIG

# A Stable Diffusion UNet in miniature: two levels, cross-attention at the first, 4 latent channels.
SOURCE_UNET = dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                   down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                   layers_per_block=1, cross_attention_dim=24, attention_head_dim=2, norm_num_groups=8)
# The frame config's model.unet describing that shape (the tiny 16 x 16 config otherwise).
SHAPE = ["model.unet.block_out_channels=[16, 32]", "model.unet.down_block_types=[CrossAttnDownBlock2D, DownBlock2D]",
         "model.unet.up_block_types=[UpBlock2D, CrossAttnUpBlock2D]", "model.unet.layers_per_block=1",
         "model.unet.attention_head_dim=2", "model.unet.cross_attention_dim=24"]
SAMPLE_CHANNELS = 4


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_sd(tmp_path_factory.mktemp("sd") / "tiny-sd")


def save_sd(root, **unet_options):
    """A diffusers pipeline folder: model_index.json, unet/ (SOURCE_UNET, then
    ``unet_options``) and vae/ (2x downsampling), random weights."""
    torch.manual_seed(3)
    unet = UNet2DConditionModel(**{**SOURCE_UNET, **unet_options})
    with torch.no_grad():
        for parameter in unet.parameters():  # off diffusers' zero inits, so that every weight shows
            parameter.add_(torch.randn_like(parameter) * 0.02)
    unet.save_pretrained(root / "unet")
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=SAMPLE_CHANNELS, norm_num_groups=8,
                  layers_per_block=1).save_pretrained(root / "vae")
    (root / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}))
    return root


def from_sd(tiny_frame_config, folder, *overrides):
    config = tiny_frame_config(*SHAPE, f"model.init_from={folder}", *overrides)
    torch.manual_seed(0)
    return FrameModel.from_config(config.model).eval()


def test_every_pretrained_weight_equals_its_source_and_new_inputs_start_at_zero(tiny_frame_config, sd_folder):
    model = from_sd(tiny_frame_config, sd_folder, "model.coarse_image=true")
    source = UNet2DConditionModel.from_pretrained(sd_folder / "unet").state_dict()
    state = model.unet.state_dict()
    for key, tensor in source.items():
        if key == "conv_in.weight":
            assert torch.equal(state[key][:, :SAMPLE_CHANNELS], tensor)
        else:
            assert torch.equal(state[key], tensor), key
    assert model.vae is not None and model.sample_shape == (SAMPLE_CHANNELS, 8, 8)  # the pipeline's own vae/
    vae = AutoencoderKL.from_pretrained(sd_folder / "vae").state_dict()
    assert all(torch.equal(model.vae.state_dict()[key], tensor) for key, tensor in vae.items())
    assert state["conv_in.weight"].shape[1] == SAMPLE_CHANNELS + model.pose_channels + SAMPLE_CHANNELS + 1
    assert not state["conv_in.weight"][:, SAMPLE_CHANNELS:].any()
    new = [key for key in state if key not in source]
    assert new and all(key.startswith(("class_embedding.", "encoder_hid_proj.")) for key in new)
    for key in ("encoder_hid_proj.weight", "encoder_hid_proj.bias", "class_embedding.linear_2.weight", "class_embedding.linear_2.bias"):
        assert not state[key].any(), key


def test_tokens_as_wide_as_the_cross_attention_still_pass_a_zero_projection(tiny_frame_config, tmp_path):
    """The tiny encoder's 16-wide tokens into a UNet whose cross_attention_dim is 16: the
    projection is there all the same, zero at the start, and survives a save and load."""
    folder = save_sd(tmp_path / "sd-16", cross_attention_dim=16)
    model = from_sd(tiny_frame_config, folder, "model.unet.cross_attention_dim=16")
    assert model.image_encoder.token_dim == model.unet.config.cross_attention_dim == 16
    assert model.unet.config.encoder_hid_dim == 16 and isinstance(model.unet.encoder_hid_proj, torch.nn.Linear)
    assert not any(parameter.any() for parameter in model.unet.encoder_hid_proj.parameters())
    source = UNet2DConditionModel.from_pretrained(folder / "unet").eval()
    with torch.no_grad():
        noisy, given = inputs(model)
        timesteps = torch.tensor([10, 700])
        ours = model.predict(noisy, timesteps, given)
        theirs = source(noisy, timesteps, encoder_hidden_states=torch.zeros(len(noisy), 1, 16)).sample
    assert torch.allclose(ours, theirs, atol=1e-5)
    model.save_pretrained(tmp_path / "saved")
    loaded = FrameModel.from_pretrained(tmp_path / "saved").eval()
    assert loaded.unet.config.encoder_hid_dim == 16
    with torch.no_grad():
        assert torch.equal(loaded.predict(noisy, timesteps, inputs(loaded)[1]), ours)


def inputs(model, frames=2, seed=1):
    generator = torch.Generator().manual_seed(seed)
    height, width = model.resolution
    source = torch.rand(1, 3, height, width, generator=generator) * 2 - 1
    appearance = model.encode_appearance(source)
    coarse = None
    if model.coarse_image:
        coarse = model.coarse_condition(torch.rand(frames, 3, height, width, generator=generator) * 2 - 1,
                                        (torch.rand(frames, 1, height, width, generator=generator) > 0.5).float())
    reference = model.reference_features(source, appearance) if model.reference_attention else None
    poses = torch.rand(frames, model.pose_channels, height, width, generator=generator)
    noisy = torch.randn(frames, *model.sample_shape, generator=generator)
    return noisy, model.frame_conditions(appearance, poses, coarse, reference)


@pytest.mark.parametrize("v2", [False, True])
def test_at_initialisation_the_denoiser_computes_the_source_unet(tiny_frame_config, sd_folder, v2):
    extra = ["model.coarse_image=true", "model.reference_attention=true"] if v2 else []
    model = from_sd(tiny_frame_config, sd_folder, *extra)
    source = UNet2DConditionModel.from_pretrained(sd_folder / "unet").eval()
    with torch.no_grad():
        noisy, given = inputs(model)
        if v2:  # the reference path is new attention context, not a zero-initialised input: drop it
            keep = torch.ones(len(noisy), dtype=torch.bool)
            given = given.masked(keep, keep, keep, keep, ~keep)
        timesteps = torch.tensor([10, 700])
        ours = model.predict(noisy, timesteps, given)
        theirs = source(noisy, timesteps, encoder_hidden_states=torch.zeros(len(noisy), 1, 24)).sample
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_a_config_of_other_widths_is_one_line_naming_the_field(tiny_frame_config, sd_folder):
    with pytest.raises(SigngenError, match=r"block_out_channels \[16, 32\], the config model.unet.block_out_channels \[16, 16\]"):
        from_sd(tiny_frame_config, sd_folder, "model.unet.block_out_channels=[16, 16]")
    with pytest.raises(SigngenError, match="cross_attention_dim 24, the config model.unet.cross_attention_dim 16"):
        from_sd(tiny_frame_config, sd_folder, "model.unet.cross_attention_dim=16")
    with pytest.raises(SigngenError, match="patch_size 1"):
        from_sd(tiny_frame_config, sd_folder, "model.unet.patch_size=2")


def test_a_folder_of_another_kind_is_one_line(tiny_frame_config, sd_folder, tmp_path):
    from diffusers import MotionAdapter

    MotionAdapter(block_out_channels=(16, 32), motion_layers_per_block=1, motion_num_attention_heads=2,
                  motion_norm_num_groups=8).save_pretrained(tmp_path / "motion")
    with pytest.raises(SigngenError, match="holds a MotionAdapter, not a UNet2DConditionModel"):
        from_sd(tiny_frame_config, tmp_path / "motion")
    with pytest.raises(SigngenError, match="folder not found"):
        from_sd(tiny_frame_config, tmp_path / "nothing")
    # a bare UNet folder without a VAE: the pixel sample has 3 channels, the UNet reads 4
    with pytest.raises(SigngenError, match="maps 4 to 4 channels, the denoised sample has 3"):
        from_sd(tiny_frame_config, sd_folder / "unet")
    tiny_model = from_sd(tiny_frame_config, sd_folder)
    tiny_model.save_pretrained(tmp_path / "frame")
    with pytest.raises(SigngenError, match="signgen-frame-model folder"):
        from_sd(tiny_frame_config, tmp_path / "frame")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text((sd_folder / "unet" / "config.json").read_text())
    (tmp_path / "pickled" / "diffusion_pytorch_model.bin").write_bytes(b"\0")
    with pytest.raises(SigngenError, match="pickled weights only"):
        from_sd(tiny_frame_config, tmp_path / "pickled", f"model.latent.vae_path={sd_folder / 'vae'}")


def test_init_from_is_off_by_default_and_required_where_a_config_asks(tiny_frame_config):
    from signgen.config import CONFIG_FOLDER, load_frame_config

    assert tiny_frame_config().model.init_from is None and tiny_frame_config().model.reference_net == "shared"
    with pytest.raises(SigngenError, match="--set model.init_from=DIR"):
        load_frame_config(CONFIG_FOLDER / "frame-phoenix-sd15.yaml")


def test_an_init_from_model_after_a_training_step_saves_and_loads_bit_identically(tiny_frame_config, sd_folder, tmp_path):
    from signgen.training.frame import DiffusionObjective

    model = from_sd(tiny_frame_config, sd_folder, "model.coarse_image=true", "model.reference_attention=true")
    objective = DiffusionObjective(model, tiny_frame_config(*SHAPE).train_diffusion).train()
    height, width = model.resolution
    generator = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(2, 3, height, width, generator=generator) * 2 - 1,
             "target": torch.rand(2, 3, height, width, generator=generator) * 2 - 1,
             "target_pose": torch.rand(2, model.pose_channels, height, width, generator=generator),
             "coarse": torch.rand(2, 3, height, width, generator=generator) * 2 - 1,
             "uncovered": (torch.rand(2, 1, height, width, generator=generator) > 0.5).float()}
    optimizer = torch.optim.SGD(model.unet.parameters(), lr=0.1)
    objective(batch).backward()
    optimizer.step()  # one step: the zero-initialised projections move off zero
    assert model.unet.encoder_hid_proj.weight.any()
    model.eval()
    model.save_pretrained(tmp_path / "saved")
    loaded = FrameModel.from_pretrained(tmp_path / "saved")
    with torch.no_grad():
        noisy, given = inputs(model)
        first = model.predict(noisy, torch.tensor([5, 500]), given)
        second = loaded.predict(noisy, torch.tensor([5, 500]), inputs(loaded)[1])
    assert torch.equal(first, second)


def test_the_reference_path_may_be_a_trainable_copy_of_the_pretrained_unet(tiny_frame_config, sd_folder, tmp_path):
    from signgen.training.frame import DiffusionObjective

    config = tiny_frame_config(*SHAPE, f"model.init_from={sd_folder}", "model.reference_attention=true", "model.reference_net=copy")
    torch.manual_seed(0)
    model = FrameModel.from_config(config.model)
    copied, unet = model.reference_unet.state_dict(), model.unet.state_dict()
    assert copied.keys() == unet.keys() and all(torch.equal(copied[key], unet[key]) for key in unet)
    assert model.reference_unet is not model.unet
    for module in (model.image_encoder, model.pose_encoder, model.fusion):
        module.requires_grad_(False)
    objective = DiffusionObjective(model, config.train_diffusion).train()
    height, width = model.resolution
    generator = torch.Generator().manual_seed(0)
    batch = {"source": torch.rand(2, 3, height, width, generator=generator) * 2 - 1,
             "target": torch.rand(2, 3, height, width, generator=generator) * 2 - 1,
             "target_pose": torch.rand(2, model.pose_channels, height, width, generator=generator)}
    objective(batch).backward()
    grads = [p.grad for p in model.reference_unet.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)  # the copy learns through the features it writes
    model.save_pretrained(tmp_path / "saved")
    loaded = FrameModel.from_pretrained(tmp_path / "saved")
    assert loaded.reference_unet is not None
    assert all(torch.equal(loaded.reference_unet.state_dict()[k], v) for k, v in model.reference_unet.state_dict().items())
    with pytest.raises(SigngenError, match="reference_net: copy needs reference_attention"):
        tiny_frame_config("model.reference_net=copy")


def test_the_sd15_phoenix_config_fits_stable_diffusion_1_5_without_allocating(tmp_path, capsys):
    from signgen.config import CONFIG_FOLDER, load_frame_config

    sd = tmp_path / "stable-diffusion-v1-5"
    for name, config in (("unet", SD15_UNET_CONFIG), ("vae", SD_VAE_CONFIG)):
        (sd / name).mkdir(parents=True)
        (sd / name / "config.json").write_text(json.dumps(config))  # configs alone: no weight is read on meta
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    config = load_frame_config(CONFIG_FOLDER / "frame-phoenix-sd15.yaml", [f"model.init_from={sd}"])
    with torch.device("meta"):
        model = FrameModel.from_config(config.model)
    counts = {name: sum(p.numel() for p in module.parameters()) / 1e6 for name, module in model.components().items()}
    with capsys.disabled():
        print("\nfrom SD 1.5, parameters (millions):", {k: round(v, 1) for k, v in counts.items()})
    assert model.sample_shape == (4, 72, 56) and model.reference_unet is not None
    assert 855 < counts["unet"] < 875 and counts["reference_unet"] == counts["unet"]
    assert model.unet.config.in_channels == 4 + 4 + 5 and model.unet.config.encoder_hid_dim == model.image_encoder.token_dim

"""signgen train autoencoder: a VAE folder a frame model denoises in, like a Stable Diffusion VAE's."""

from __future__ import annotations

import json

import torch
from diffusers import AutoencoderKL

TINY = ["--set", "model.resolution=[16, 16]", "--set", "model.block_out_channels=[8, 8]", "--set", "model.norm_num_groups=4",
        "--set", "train.batch_size=4", "--set", "train.checkpoint_every=2", "--set", "train.log_every=1"]


def test_a_trained_autoencoder_is_the_latent_space_of_a_frame_model(synthsign_corpus, tmp_path, run_cli, tiny_frame_model):
    out = tmp_path / "ae"
    code, stdout, err = run_cli("train", "autoencoder", "--data", synthsign_corpus, "--out", out, *TINY, "--set", "train.max_steps=2")
    assert code == 0, err
    assert "model.latent.vae_path" in stdout
    code, _, err = run_cli("train", "autoencoder", "--data", synthsign_corpus, "--out", out, *TINY, "--set", "train.max_steps=3", "--resume")
    assert code == 0, err
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]

    vae = AutoencoderKL.from_pretrained(out / "model")
    assert vae.config.latent_channels == 4 and vae.config.scaling_factor != 1.0
    images = torch.rand(5, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(images).latent_dist.mode() * vae.config.scaling_factor
    assert latents.shape == (5, 4, 8, 8)

    model = tiny_frame_model(0, f"model.latent.vae_path={out / 'model'}", "model.resolution=[16, 16]")
    assert model.sample_shape == (4, 8, 8) and model.vae is not None
    with torch.no_grad():
        assert torch.allclose(model.to_sample_space(images, deterministic=True), latents, atol=1e-5)


def test_an_autoencoder_config_that_does_not_fit_is_one_line(synthsign_corpus, tmp_path, run_cli, cli_error_line):
    out = tmp_path / "ae"
    code, _, err = run_cli("train", "autoencoder", "--data", synthsign_corpus, "--out", out, "--set", "model.resolution=[18, 16]")
    assert code == 2 and "divisible by 4" in cli_error_line(err)
    assert not out.exists()

"""train_diffusion.latent_cache: VAE latents of the corpus encoded once, read every epoch."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKL
from safetensors import safe_open

from signgen.errors import SigngenError
from signgen.training.latents import CachedPairs, LatentCache, build_latent_cache, cached_pairs


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vae") / "vae"
    torch.manual_seed(0)
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                  latent_channels=4, norm_num_groups=8, layers_per_block=1).save_pretrained(folder)
    return folder


def latent_model(tiny_frame_model, tiny_vae, *overrides):
    return tiny_frame_model(0, f"model.latent.vae_path={tiny_vae}", "model.reference_attention=true", *overrides, pose_path=False)


def count_encodes(vae) -> list:
    calls = []
    encode = vae.encode

    def counted(images, *args, **kwargs):
        calls.append(len(images))
        return encode(images, *args, **kwargs)

    vae.encode = counted
    return calls


def pairs_of(corpus, model, colour_augment_prob=0.0):
    from signgen.corpora.samplers import frame_pair_dataset

    return frame_pair_dataset(corpus, "train", resolution=model.resolution, colour_augment_prob=colour_augment_prob)


def test_training_reads_the_cache_every_epoch_without_the_vae_encoder(tiny_frame_model, tiny_frame_config, tiny_vae,
                                                                     synthsign_corpus, tmp_path):
    from signgen.training.frame import train_diffusion

    model = latent_model(tiny_frame_model, tiny_vae)
    calls = count_encodes(model.vae)
    dataset = cached_pairs(model, pairs_of(synthsign_corpus, model), synthsign_corpus, "train", tmp_path / "latents", progress=False)
    assert calls and sum(calls) == len(dataset)  # every frame encoded once, while the cache was built
    item = dataset[3]
    with torch.no_grad():
        posterior = model.vae.encode(item["target"][None]).latent_dist
    assert torch.allclose(item["target_latent"][:4], posterior.mean[0], atol=2e-3) and item["latent_cached"]
    calls.clear()
    config = tiny_frame_config().train_diffusion
    config.batch_size, config.max_steps, config.log_every, config.checkpoint_every = len(dataset) // 2, 4, 1, 4
    train_diffusion(model, dataset, tmp_path / "run", config, progress=False)  # two batches an epoch: two epochs
    assert calls == []  # neither epoch called the VAE encoder: targets and sources came from the cache


def test_another_vae_or_frame_size_gets_its_own_cache_and_a_rerun_resumes(tiny_frame_model, tiny_vae, synthsign_corpus, tmp_path, randomize):
    model = latent_model(tiny_frame_model, tiny_vae)
    cache = LatentCache(tmp_path, model.vae, model.resolution)
    assert build_latent_cache(cache, model.vae, synthsign_corpus, "train", progress=False) == 1
    assert build_latent_cache(cache, model.vae, synthsign_corpus, "train", progress=False) == 0  # all there: nothing encoded
    other_size = LatentCache(tmp_path, model.vae, (32, 24))
    randomize(model.vae, seed=5)
    other_vae = LatentCache(tmp_path, model.vae, model.resolution)
    assert len({cache.folder, other_size.folder, other_vae.folder}) == 3
    with pytest.raises(SigngenError, match="lacks 1 video"):
        CachedPairs(pairs_of(synthsign_corpus, model), other_vae, "train")

    encode = model.vae.encode
    state = {"calls": 0}

    def interrupted(images, *args, **kwargs):
        state["calls"] += 1
        if state["calls"] == 2:
            raise KeyboardInterrupt
        return encode(images, *args, **kwargs)

    model.vae.encode = interrupted
    with pytest.raises(KeyboardInterrupt):
        build_latent_cache(other_vae, model.vae, synthsign_corpus, "train", progress=False)
    split_folder = other_vae.folder / "train"
    assert not split_folder.is_dir() or list(split_folder.iterdir()) == []  # no half-written video file
    model.vae.encode = encode
    assert build_latent_cache(other_vae, model.vae, synthsign_corpus, "train", progress=False) == 1
    CachedPairs(pairs_of(synthsign_corpus, model), other_vae, "train")  # complete now


def test_a_cache_file_of_other_frames_is_encoded_again_never_read(tiny_frame_model, tiny_vae, synthsign_corpus, tmp_path):
    """Each file records its video's frame count and where its frames come from: the same
    cache root used with another corpus, or a video whose frames changed, re-encodes."""
    import shutil

    from signgen.corpora.phoenix import PhoenixCorpus

    model = latent_model(tiny_frame_model, tiny_vae)
    cache = LatentCache(tmp_path / "latents", model.vae, model.resolution)
    assert build_latent_cache(cache, model.vae, synthsign_corpus, "train", progress=False) == 1
    copy = tmp_path / "copy"
    shutil.copytree(synthsign_corpus, copy)
    pairs = pairs_of(copy, model)
    with pytest.raises(SigngenError, match="lacks 1 video.*or holds them for other frames"):
        CachedPairs(pairs, cache, "train")  # the file was written for the other corpus' frames
    assert build_latent_cache(cache, model.vae, copy, "train", progress=False) == 1
    sample = PhoenixCorpus(copy).split("train")[0]
    frames = sample.num_frames
    sample.frame_files[-1].unlink()  # the video loses its last frame: the cached file has one too many
    assert build_latent_cache(cache, model.vae, copy, "train", progress=False) == 1
    with safe_open(str(cache.path("train", sample.name)), "pt") as file:
        assert file.get_slice("posterior").get_shape()[0] == frames - 1
        assert file.metadata()["num_frames"] == str(frames - 1)
    assert build_latent_cache(cache, model.vae, copy, "train", progress=False) == 0
    with pytest.raises(SigngenError, match=f"holds {frames - 1} frame.*not frame {frames - 1}"):
        cache.read("train", sample.name, frames - 1)  # a file changed under a running training: one line, no IndexError


def test_recoloured_pairs_are_encoded_and_pixel_models_refuse_a_cache(tiny_frame_model, tiny_vae, synthsign_corpus, tmp_path):
    from signgen.training.latents import sample_space_pair
    from torch.utils.data import default_collate

    model = latent_model(tiny_frame_model, tiny_vae)
    dataset = cached_pairs(model, pairs_of(synthsign_corpus, model, colour_augment_prob=0.5), synthsign_corpus, "train",
                           tmp_path / "latents", progress=False)
    batch = default_collate([dataset[index] for index in range(8)])
    assert 0 < int(batch["latent_cached"].sum()) < 8
    calls = count_encodes(model.vae)
    target, source = sample_space_pair(model, batch)
    assert target.shape == source.shape == (8, *model.sample_shape)
    assert sum(calls) == 2 * int((~batch["latent_cached"]).sum())  # only the recoloured pairs, target and source
    pixels = tiny_frame_model(0)
    with pytest.raises(SigngenError, match="denoises pixels"):
        cached_pairs(pixels, pairs_of(synthsign_corpus, pixels), synthsign_corpus, "train", tmp_path / "x", progress=False)


def test_the_cache_latents_command_builds_what_training_reads(run_cli, cli_error_line, tiny_vae, synthsign_corpus, tmp_path):
    from signgen.config import CONFIG_FOLDER

    base = ["data", "cache-latents", "--data", synthsign_corpus, "--config", CONFIG_FOLDER / "frame-tiny.yaml",
            "--set", "model.resolution=[16, 16]", "--set", f"model.latent.vae_path={tiny_vae}"]
    code, _, err = run_cli(*base)
    assert code == 2 and "train_diffusion.latent_cache=DIR" in cli_error_line(err)
    code, out, err = run_cli(*base, "--set", f"train_diffusion.latent_cache={tmp_path / 'latents'}")
    assert code == 0, err
    assert "encoded 1 video(s) of train now" in out
    assert len(list((tmp_path / "latents").glob("*-16x16/train/*.safetensors"))) == 1
    code, out, _ = run_cli(*base, "--set", f"train_diffusion.latent_cache={tmp_path / 'latents'}")
    assert code == 0 and "encoded 0 video(s)" in out
    from signgen.config import load_frame_config
    from signgen.models.frame_model import FrameModel

    config = load_frame_config(CONFIG_FOLDER / "frame-tiny.yaml", ["model.resolution=[16, 16]"])
    FrameModel.from_config(config.model, with_denoiser=False).save_pretrained(tmp_path / "fusion")
    code, _, err = run_cli("train", "diffusion", "--data", synthsign_corpus, "--out", tmp_path / "run", "--fusion-model",
                           tmp_path / "fusion", "--set", "model.resolution=[16, 16]", "--set", f"model.init_from={tmp_path / 'no-sd'}")
    assert code == 2 and cli_error_line(err, only=False).endswith(f"model.init_from: folder not found: {tmp_path / 'no-sd'}")


def test_train_diffusion_goes_on_from_a_trained_frame_model(run_cli, cli_error_line, synthsign_corpus, tmp_path):
    from signgen.config import CONFIG_FOLDER, load_frame_config
    from signgen.models.frame_model import FrameModel

    settings = ["--config", CONFIG_FOLDER / "frame-tiny.yaml", "--set", "model.resolution=[16, 16]"]
    config = load_frame_config(CONFIG_FOLDER / "frame-tiny.yaml", ["model.resolution=[16, 16]"])
    start = FrameModel.from_config(config.model)
    torch.nn.init.normal_(start.unet.conv_out.weight, std=0.1)  # not what a fresh denoiser starts from (zero)
    start.save_pretrained(tmp_path / "start")
    FrameModel.from_config(config.model, with_denoiser=False).save_pretrained(tmp_path / "fusion")
    common = ["train", "diffusion", "--data", synthsign_corpus, *settings, "--set", "train_diffusion.max_steps=1",
              "--set", "train_diffusion.batch_size=2", "--set", "train_diffusion.learning_rate=1.0e-12"]
    code, _, err = run_cli(*common, "--out", tmp_path / "run", "--frame-model", tmp_path / "start")
    assert code == 0, err
    trained = FrameModel.from_pretrained(tmp_path / "run" / "model")
    assert all(torch.allclose(a, b, atol=1e-8) for a, b in zip(trained.unet.state_dict().values(), start.unet.state_dict().values()))
    assert trained.unet.conv_out.weight.abs().max() > 0.1
    code, _, err = run_cli(*common, "--out", tmp_path / "both", "--frame-model", tmp_path / "start", "--fusion-model", tmp_path / "fusion")
    assert code == 2 and "not both" in cli_error_line(err)
    code, _, err = run_cli(*common, "--out", tmp_path / "fusion-only", "--frame-model", tmp_path / "fusion")
    assert code == 2 and "holds only the fusion stage: pass it as --fusion-model" in cli_error_line(err)
    code, _, err = run_cli(*common, "--out", tmp_path / "other", "--frame-model", tmp_path / "start",
                           "--set", "model.noise.prediction_type=sample")
    assert code == 2 and "model.noise.prediction_type 'sample' (the model: 'epsilon')" in cli_error_line(err)
    assert not any((tmp_path / name).exists() for name in ("both", "fusion-only", "other"))

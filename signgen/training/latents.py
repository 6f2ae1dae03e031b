"""VAE latents of a corpus' frames, encoded once and read from disk (``train_diffusion.latent_cache``).

A latent frame model spends much of a training step in the VAE encoder (SD's encoder at
512 x 416 costs about as much as a UNet pass). The frames of a corpus do not change, so
their VAE posteriors (mean and standard deviation, float16) are written once per video:

    LATENT_CACHE/<vae fingerprint>-<H>x<W>/cache.json            what the key stands for
    LATENT_CACHE/<vae fingerprint>-<H>x<W>/<split>/<video>.safetensors   "posterior" (T, 2c, h, w)

The key is a hash of the VAE's config and weights and the frame size: another VAE or
another resolution gets its own folder (the old one is left for a user to delete). Each
video's file also records, in its safetensors metadata, the video's frame count and a
digest of where its frames come from (the resolved frame folder and the frame file names):
a file that does not match the corpus it is read with (another corpus at the same cache
root, a video whose frames changed) is encoded again, never read. Each video's file is
written atomically, so an interrupted build resumes where it stopped (``signgen data
cache-latents``, or the first step of ``signgen train diffusion``).

Training reads the cache for every pair it has not recoloured: the target is sampled from
its cached posterior (as ``to_sample_space`` samples the VAE's), the source is its mean.
Recoloured pairs (``colour_augment_prob``) and the coarse image (the photo warped to each
pose, not a corpus frame) are still encoded as they come.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from signgen.atomic import atomic_output
from signgen.errors import SigngenError

FORMAT_VERSION = 1
KEY_NAME = "cache.json"
TENSOR_NAME = "posterior"
ITEM_KEYS = ("target_latent", "source_latent", "latent_cached")


def vae_fingerprint(vae) -> str:
    """A hash of the VAE's config and every weight: another VAE, another key."""
    digest = hashlib.sha256()
    config = {key: value for key, value in vae.config.items() if not key.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in sorted(vae.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class LatentCache:
    """The cache of one VAE at one frame size: see the module docstring."""

    def __init__(self, root: str | os.PathLike, vae, resolution: tuple[int, int]):
        height, width = resolution
        self.fingerprint = vae_fingerprint(vae)
        self.folder = Path(root) / f"{self.fingerprint[:16]}-{height}x{width}"
        self.resolution = (int(height), int(width))

    def path(self, split: str, video: str) -> Path:
        return self.folder / split / f"{video}.safetensors"

    def has(self, split: str, sample) -> bool:
        """Whether the cache holds the latents of ``sample`` (a corpus ``VideoSample``): its
        file exists and was written for this video's frames (:func:`frames_metadata`)."""
        path = self.path(split, sample.name)
        if not path.is_file():
            return False
        try:
            with safe_open(str(path), "pt") as file:
                written = file.metadata() or {}
        except (SafetensorError, OSError):
            return False  # unreadable: encoded again, replacing it
        return written == frames_metadata(sample)

    def write(self, split: str, sample, posterior: torch.Tensor) -> None:
        """Store the posterior (T, 2c, h, w) of ``sample``, atomically, with its frames' metadata."""
        path = self.path(split, sample.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path) as tmp:
            save_file({TENSOR_NAME: posterior.contiguous()}, str(tmp), metadata=frames_metadata(sample))

    def read(self, split: str, video: str, frame: int) -> torch.Tensor:
        """The cached posterior (2c, h, w), float32, of one frame."""
        with safe_open(str(self.path(split, video)), "pt") as file:
            part = file.get_slice(TENSOR_NAME)
            count = part.get_shape()[0]
            if not 0 <= frame < count:
                raise SigngenError(f"the latent cache {self.folder} holds {count} frame(s) of {split}/{video}, not frame {frame}: "
                                   f"it changed after training started; rebuild it (signgen data cache-latents)")
            return part[frame : frame + 1][0].float()

    def write_key(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / KEY_NAME).is_file():
            key = {"format_version": FORMAT_VERSION, "vae_sha256": self.fingerprint, "resolution": list(self.resolution)}
            with atomic_output(self.folder / KEY_NAME) as tmp:
                tmp.write_text(json.dumps(key, indent=2) + "\n", encoding="utf-8")


def frames_metadata(sample) -> dict[str, str]:
    """What a video's cache file records of its frames: their count and a digest of the
    resolved frame folder and the frame file names (safetensors metadata is str -> str)."""
    digest = hashlib.sha256(str(Path(sample.frame_folder).resolve()).encode())
    for path in sample.frame_files:
        digest.update(b"\0" + Path(path).name.encode())
    return {"format_version": str(FORMAT_VERSION), "num_frames": str(sample.num_frames), "frames_sha256": digest.hexdigest()}


@torch.no_grad()
def build_latent_cache(cache: LatentCache, vae, corpus_root, split: str, batch_size: int = 16, progress: bool = True) -> int:
    """Encode every video of ``split`` not in ``cache`` yet with ``vae`` (the VAE the cache
    is keyed by; on a GPU when there is one); returns how many videos were encoded now."""
    from tqdm.auto import tqdm

    from signgen.corpora.phoenix import PhoenixCorpus
    from signgen.corpora.samplers import to_model_image

    cache.write_key()
    todo = [sample for sample in PhoenixCorpus(corpus_root).split(split) if not cache.has(split, sample)]
    device = torch.device("cuda") if torch.cuda.is_available() else vae.device
    home = vae.device
    vae.to(device)
    try:
        for sample in tqdm(todo, desc=f"caching latents of {split}", unit="video", disable=not progress):
            parts = []
            for start in range(0, sample.num_frames, batch_size):
                frames = range(start, min(start + batch_size, sample.num_frames))
                images = torch.stack([to_model_image(sample.frame(index), cache.resolution) for index in frames])
                # bf16 on a GPU, as training encodes under mixed precision; full precision on a CPU
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    posterior = vae.encode(images.to(device, vae.dtype)).latent_dist
                parts.append(torch.cat([posterior.mean, posterior.std], dim=1).float().to("cpu", torch.float16))
            cache.write(split, sample, torch.cat(parts))
    finally:
        vae.to(home)
    return len(todo)


class CachedPairs:
    """A frame-pair dataset (``signgen.corpora.samplers.FramePairDataset``) whose items also
    carry their frames' cached posteriors: ``target_latent`` and ``source_latent`` (2c, h,
    w) and ``latent_cached`` (False for a recoloured pair: zeros then, encode instead)."""

    def __init__(self, pairs, cache: LatentCache, split: str):
        self.pairs, self.cache, self.split = pairs, cache, split
        missing = [sample.name for sample in pairs.samples if not cache.has(split, sample)]
        if missing:
            raise SigngenError(f"the latent cache {cache.folder} lacks {len(missing)} video(s) of {split} (or holds them for "
                               f"other frames), e.g. {missing[0]}; build it first (signgen data cache-latents)")

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        self.pairs.set_epoch(epoch)

    def __getitem__(self, index: int) -> dict:
        item = self.pairs[index]
        video, target, source = self.pairs.locate(int(index))
        name = self.pairs.samples[video].name
        if self.pairs.recoloured(int(index)):
            blank = torch.zeros_like(self.cache.read(self.split, name, target))
            return {**item, "target_latent": blank, "source_latent": blank.clone(), "latent_cached": torch.tensor(False)}
        return {**item, "target_latent": self.cache.read(self.split, name, target),
                "source_latent": self.cache.read(self.split, name, source), "latent_cached": torch.tensor(True)}


def sample_space_pair(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(targets, sources) of a batch in the sample space: from the cached posteriors where
    ``latent_cached`` (the target sampled, the source its mean), encoded elsewhere;
    without cached latents in the batch, the targets encoded and no sources (None)."""
    if "latent_cached" not in batch:
        return model.to_sample_space(batch["target"]), None
    scale = model.vae.config.scaling_factor
    mean, std = batch["target_latent"].float().chunk(2, dim=1)
    target = (mean + std * torch.randn_like(std)) * scale
    source = batch["source_latent"].float().chunk(2, dim=1)[0] * scale
    fresh = ~batch["latent_cached"].bool()
    if fresh.any():
        target[fresh] = model.to_sample_space(batch["target"][fresh]).float()
        source[fresh] = model.to_sample_space(batch["source"][fresh], deterministic=True).float()
    return target, source


def cached_pairs(model, pairs, corpus_root, split: str, cache_root, progress: bool = True) -> CachedPairs:
    """``pairs`` with the latents of ``model``'s VAE, the cache built first where it is
    incomplete (refused under several processes: build it once, before the launch)."""
    if model.vae is None:
        raise SigngenError("train_diffusion.latent_cache caches VAE latents; this frame model denoises pixels (no VAE)")
    processes = int(os.environ.get("WORLD_SIZE", "1"))
    cache = LatentCache(cache_root, model.vae, model.resolution)
    if processes > 1 and any(not cache.has(split, sample) for sample in pairs.samples):
        raise SigngenError(f"the latent cache {cache.folder} is incomplete; build it once before launching {processes} "
                           f"processes: signgen data cache-latents with the same --config and --set")
    build_latent_cache(cache, model.vae, corpus_root, split, progress=progress)
    return CachedPairs(pairs, cache, split)

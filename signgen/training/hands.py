"""``signgen train hands``: the hand stage's crop diffusion model (:mod:`signgen.models.hands`)
on the hand crops of a corpus (:mod:`signgen.corpora.hand_crops`), through the one driver.

The objective is DDPM's with the clean crop as the prediction (``prediction_type`` "sample"):
a target crop noised at a uniformly drawn timestep (from ``min_timestep_share`` of the
schedule up: near 1, only the noisiest, where the model has nothing but its conditions to
draw from; such a model is sampled in one step, its estimate of the conditional mean), the
model's clean estimate (the base plus its residual) against the target, squared error
weighted ``1 + hand_loss_weight``
inside the hand's feathered mask and 1 elsewhere (normalised by the mean weight), plus
``edge_loss_weight`` times the same weighted error of the crops' differences between
neighbouring pixels. The second term has the same optimum (the difference of the mean is the
mean of the differences) but weighs what squared error on pixels hardly sees: a finger's 1 px
outline is a small share of a crop's error and much of what tells a hand from a blob. The
``base_loss`` term logged beside it is the same error of the base alone: the loss of a model
that has learned nothing, the bar the hand stage has to clear.

With ``adversarial_loss_weight`` > 0 a critic (:class:`HandCritic`, pix2pix's PatchGAN on the
crop beside its keypoint map) learns to tell the corpus' crops from the model's, and the
model is also trained to pass it (hinge losses). Squared error has the conditional mean as
its optimum, and a one-step model's mean of many possible hands is a blur whose outlines are
faint; the critic scores what makes a crop look drawn rather than averaged. The critic is
trained by the same optimizer: its own loss reaches only its weights (the model's output
enters it detached), the model's adversarial term only the model's (the critic's weights are
frozen while it is scored). It is kept in checkpoints, not in the model folder.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.config import HandsConfig
from signgen.errors import SigngenError
from signgen.models.hands import IMAGE_CHANNELS, KEYPOINT_CHANNELS, HandModel, build_hand_model, load_hand_model
from signgen.training import driver

BATCH_KEYS = ("target", "base", "appearance", "keypoints", "mask")


class HandCritic(torch.nn.Module):
    """pix2pix's PatchGAN discriminator on a crop (3 channels) and its keypoint map (6): one
    score per overlapping patch of 34 x 34 pixels, high where the crop looks like the corpus'
    for that hand."""

    def __init__(self, channels: int = 32):
        super().__init__()
        widths = (IMAGE_CHANNELS + KEYPOINT_CHANNELS, channels, 2 * channels, 4 * channels)
        layers: list[torch.nn.Module] = []
        for index, (inputs, outputs) in enumerate(zip(widths, widths[1:])):
            layers.append(torch.nn.Conv2d(inputs, outputs, 4, stride=2 if index < 2 else 1, padding=1))
            if index:
                layers.append(torch.nn.GroupNorm(8, outputs))
            layers.append(torch.nn.LeakyReLU(0.2))
        layers.append(torch.nn.Conv2d(widths[-1], 1, 4, padding=1))
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, crop: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([crop, keypoints], dim=1))


@contextlib.contextmanager
def frozen(module: torch.nn.Module):
    """``module``'s parameters take no gradient inside the block."""
    parameters = [parameter for parameter in module.parameters() if parameter.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


class HandObjective(torch.nn.Module):
    """The weighted clean-crop loss of a batch of hand crops (see the module docstring)."""

    def __init__(self, model: HandModel, hand_loss_weight: float, min_timestep_share: float = 0.0,
                 edge_loss_weight: float = 0.0, adversarial_loss_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.hand_loss_weight = float(hand_loss_weight)
        self.min_timestep_share = float(min_timestep_share)
        self.edge_loss_weight = float(edge_loss_weight)
        self.adversarial_loss_weight = float(adversarial_loss_weight)
        self.critic = HandCritic() if self.adversarial_loss_weight > 0 else None

    def forward(self, batch: dict, step: int = 0) -> dict[str, torch.Tensor]:
        if not isinstance(batch, dict) or any(key not in batch for key in BATCH_KEYS):
            got = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
            raise SigngenError(f"hand training items must be dicts with keys {', '.join(BATCH_KEYS)}; got {got}")
        target, base = batch["target"], batch["base"]
        scheduler = self.model.noise_scheduler
        noise = torch.randn_like(target)
        count = scheduler.config.num_train_timesteps
        timesteps = torch.randint(int(self.min_timestep_share * count), count, (len(target),), device=target.device)
        noisy = scheduler.add_noise(target, noise, timesteps)
        predicted = self.model(noisy, timesteps, batch["keypoints"], batch["appearance"], base)
        weight = 1.0 + self.hand_loss_weight * batch["mask"]
        norm = weight.mean() * target.shape[1]

        def weighted(estimate: torch.Tensor) -> torch.Tensor:
            error = estimate - target
            loss = (weight * error ** 2).sum(dim=1, keepdim=True).mean() / norm
            if self.edge_loss_weight:
                loss = loss + self.edge_loss_weight * edge_error(error, weight) / norm
            return loss

        terms = {"loss": weighted(predicted), "base_loss": weighted(base).detach()}
        if self.critic is None:
            return terms
        fooled, critic_loss = self.adversarial_terms(predicted, target, batch["keypoints"])
        terms["pixel_loss"] = terms["loss"].detach()
        terms["adversarial_loss"], terms["critic_loss"] = fooled.detach(), critic_loss.detach()
        terms["loss"] = terms["loss"] + self.adversarial_loss_weight * fooled + critic_loss
        return terms

    def adversarial_terms(self, predicted: torch.Tensor, target: torch.Tensor,
                          keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's hinge loss against the critic (its gradient reaches the model's output,
        not the critic) and the critic's (its gradient reaches the critic, not the output)."""
        with frozen(self.critic):
            fooled = -self.critic(predicted, keypoints).mean()
        critic_loss = (F.relu(1 - self.critic(target, keypoints)).mean()
                       + F.relu(1 + self.critic(predicted.detach(), keypoints)).mean())
        return fooled, critic_loss


def edge_error(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The ``weight``-weighted squared error of horizontal and vertical neighbour differences
    (each difference weighted by the mean of its two pixels' weights), summed over channels."""
    across = error[..., :, 1:] - error[..., :, :-1], (weight[..., :, 1:] + weight[..., :, :-1]) / 2
    down = error[..., 1:, :] - error[..., :-1, :], (weight[..., 1:, :] + weight[..., :-1, :]) / 2
    return sum((w * d ** 2).sum(dim=1, keepdim=True).mean() for d, w in (across, down))


def train_hands(
    model: HandModel,
    dataset: Dataset,
    out_dir: str | Path,
    config: HandsConfig,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
) -> driver.TrainResult:
    """Train ``model`` on ``dataset``'s hand crops into ``out_dir`` (``OUT/model``: a hand-model
    folder, EMA weights when EMA is on); ``config`` is saved as ``OUT/config.yaml``."""
    train = config.train
    objective = HandObjective(model, train.hand_loss_weight, train.min_timestep_share, train.edge_loss_weight,
                              train.adversarial_loss_weight)
    critic = {} if objective.critic is None else {"critic": objective.critic}

    def load_model(folder: Path) -> None:
        model.load_state_dict(load_hand_model(folder).state_dict())

    stage = driver.Stage(
        name="hands",
        objective=objective,
        parameters=list(objective.parameters()),
        modules=[objective],
        save_model=model.save_pretrained,
        load_model=load_model,
        items="hand crops",
        checkpoint_modules=critic,
    )
    return driver.train(stage, dataset, out_dir, config.train, config, resume=resume, progress=progress)


# What a hand model's crops mean: a model started from another must crop and paste as it did.
TASK_KEYS = ("crop_size", "patch_size", "margin", "min_side", "paste", "hide_hand")


def start_from(model: HandModel, folder: str | Path) -> str:
    """``model`` with every weight of the hand model in ``folder`` (a detail head ``model`` has
    and it lacks starts as built); a line saying what was taken. One SigngenError line when the
    folder holds no hand model, crops otherwise, or has a weight of another shape."""
    try:
        source = load_hand_model(folder)
    except SigngenError as error:
        raise SigngenError(f"model.init_from: {error}") from None
    differ = [f"{key} {source.config[key]} (this config: {model.config[key]})" for key in TASK_KEYS
              if source.config[key] != model.config[key]]
    if differ:
        raise SigngenError(f"model.init_from {folder} crops otherwise: {', '.join(differ)}")
    own, given = model.state_dict(), source.state_dict()
    misfit = [name for name, tensor in given.items() if name not in own or own[name].shape != tensor.shape]
    if misfit:
        raise SigngenError(f"model.init_from {folder}: {len(misfit)} of its weights do not fit this config's model "
                           f"(first: {misfit[0]}); only new parts such as a detail head may differ")
    model.load_state_dict(given, strict=False)
    return f"model.init_from: {len(given)} of {len(own)} tensors from {folder}; the rest as built"


def hands_run(data: str | Path, out_dir: str | Path, config: HandsConfig, *, resume: bool | str | Path = False,
              progress: bool = True) -> tuple[driver.TrainResult, int]:
    """``signgen train hands``: a new model of ``config.model`` (started from
    ``model.init_from`` where given; or the checkpoint's, resumed) trained on the hand crops of
    ``config.train.split`` of the corpus ``data``; returns the result and the number of crops."""
    from signgen.corpora.hand_crops import HandCropSettings, hand_crop_dataset

    model_config, train = config.model, config.train
    settings = HandCropSettings(crop_size=model_config.crop_size, margin=model_config.margin, min_side=model_config.min_side,
                                base_resolution=tuple(train.base_resolution), frame_stride=train.frame_stride,
                                colour_augment_prob=train.colour_augment_prob, seed=train.seed, base=train.base,
                                hide_hand=model_config.hide_hand)
    driver.check_out_dir(out_dir, resume)
    model = build_hand_model(model_config)
    if model_config.init_from and resume is False:  # a resumed run takes its weights from the checkpoint
        note = start_from(model, model_config.init_from)
        if progress:
            print(note)
    dataset = hand_crop_dataset(data, train.split, settings, progress=progress)
    return train_hands(model, dataset, out_dir, config, resume=resume, progress=progress), len(dataset)


"""signgen train hands: hand crops of a SynthSign corpus, a tiny hand model whose loss falls
below its base's, a resumed run that equals an uninterrupted one, and the command line."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from signgen.config import load_config
from signgen.corpora.hand_crops import HandCropSettings, hand_crop_dataset
from signgen.errors import SigngenError
from signgen.models.hands import build_hand_model, load_hand_model
from signgen.training import driver
from signgen.training.hands import HandCritic, HandObjective, edge_error, start_from, train_hands

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_MODEL = ["model.crop_size=32", "model.patch_size=1", "model.block_out_channels=[8, 16]", "model.norm_num_groups=4",
              "model.attention_head_dim=8"]
TINY_TRAIN = ["train.batch_size=2", "train.max_steps=5", "train.checkpoint_every=2", "train.checkpoints_keep=0",
              "train.log_every=1", "train.warmup_steps=1", "train.ema_decay=0.9", "train.colour_augment_prob=0.5"]


class FirstItems:
    """The first ``count`` items of a dataset, its epochs passed on."""

    def __init__(self, dataset, count: int):
        self.dataset, self.count = dataset, count

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        return self.dataset[index]


def crops(corpus, config, stride: int = 1):
    model, train = config.model, config.train
    settings = HandCropSettings(crop_size=model.crop_size, margin=model.margin, min_side=model.min_side,
                                base_resolution=tuple(train.base_resolution), frame_stride=stride,
                                colour_augment_prob=train.colour_augment_prob, seed=train.seed)
    return hand_crop_dataset(corpus, "train", settings)


def test_hand_crops_hold_a_blurred_base_and_a_sharper_target(synthsign_corpus):
    dataset = hand_crop_dataset(synthsign_corpus, "train", HandCropSettings(crop_size=64, colour_augment_prob=0.5))
    assert len(dataset) > 50
    item = dataset[len(dataset) // 2]
    assert {key: tuple(value.shape) for key, value in item.items()} == {
        "target": (3, 64, 64), "base": (3, 64, 64), "appearance": (3, 64, 64), "keypoints": (6, 64, 64), "mask": (1, 64, 64)}
    # Second differences: the fine detail (finger edges) the frame model's resolution loses.
    detail = {key: (item[key][:, :, 2:] - 2 * item[key][:, :, 1:-1] + item[key][:, :, :-2]).abs().mean().item() for key in ("target", "base")}
    assert detail["base"] < 0.85 * detail["target"]
    assert item["keypoints"].amax(dim=(1, 2)).gt(0.5).sum() >= 5  # palm and fingers drawn
    assert item["mask"].max() > 0.9 and item["mask"][:, :2].max() == 0
    video, frame, _ = dataset.items[len(dataset) // 2]
    assert dataset.appearance_frame(len(dataset) // 2) != frame


def fixed_loss(objective: HandObjective, batch: dict) -> float:
    torch.manual_seed(123)  # the same noise and timesteps before and after training
    with torch.no_grad():
        return objective(batch)["loss"].item()


def test_a_tiny_models_loss_falls_below_its_base_in_30_steps(synthsign_corpus, tmp_path):
    config = load_config("hands", None, TINY_MODEL + ["train.batch_size=4", "train.max_steps=30", "train.learning_rate=2.0e-3",
                                                      "train.warmup_steps=2", "train.ema_decay=0", "train.checkpoint_every=30",
                                                      "train.colour_augment_prob=0"])
    dataset = crops(synthsign_corpus, config, stride=2)
    torch.manual_seed(0)
    model = build_hand_model(config.model)
    objective = HandObjective(model, config.train.hand_loss_weight)
    batch = {key: torch.stack([dataset[i][key] for i in range(0, len(dataset), len(dataset) // 16)]) for key in dataset[0]}
    before = fixed_loss(objective, batch)
    train_hands(model, dataset, tmp_path / "run", config, progress=False)
    after = fixed_loss(objective.eval(), batch)
    assert before == pytest.approx(fixed_loss(HandObjective(build_hand_model(config.model), config.train.hand_loss_weight), batch))  # untrained: the base's
    assert after < 0.8 * before
    assert load_hand_model(tmp_path / "run").crop_size == 32


def test_the_edge_term_weighs_outlines_and_leaves_smooth_errors_alone():
    weight = torch.ones(1, 1, 16, 16)
    smooth = torch.full((1, 3, 16, 16), 0.1)  # a colour cast: the same error everywhere
    outline = torch.zeros(1, 3, 16, 16)
    outline[..., 8, :] = 0.1  # a one-pixel line missing
    assert edge_error(smooth, weight).item() == pytest.approx(0.0, abs=1e-9)
    assert edge_error(outline, weight).item() > (outline ** 2).sum(dim=1).mean().item()  # more than its pixel error
    # The same extra weight counts where it lies: on the line's rows more than away from them.
    rows = torch.arange(16).view(1, 1, 16, 1)
    on_line, elsewhere = weight + 4 * ((rows >= 7) & (rows <= 9)), weight + 4 * (rows <= 2)
    assert edge_error(outline, on_line) > 2 * edge_error(outline, elsewhere)


def test_the_edge_weight_adds_to_the_loss_and_is_checked(synthsign_corpus):
    config = load_config("hands", None, TINY_MODEL)
    torch.manual_seed(0)
    model = build_hand_model(config.model)
    dataset = crops(synthsign_corpus, config, stride=8)
    items = [dataset[0], dataset[1]]
    batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
    plain = fixed_loss(HandObjective(model, 4.0), batch)
    assert fixed_loss(HandObjective(model, 4.0, edge_loss_weight=1.0), batch) > plain
    with pytest.raises(SigngenError, match="edge_loss_weight"):
        load_config("hands", None, ["train.edge_loss_weight=-1"])


def test_the_critics_loss_reaches_only_the_critic_and_the_models_only_the_model():
    torch.manual_seed(0)
    objective = HandObjective(build_hand_model(load_config("hands", None, TINY_MODEL).model), 4.0, adversarial_loss_weight=0.5)
    assert isinstance(objective.critic, HandCritic) and HandObjective(objective.model, 4.0).critic is None
    target, keypoints = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 6, 32, 32)

    def gradients(*which: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        predicted = torch.linspace(-1, 1, 2 * 3 * 32 * 32).view(2, 3, 32, 32).requires_grad_()
        for parameter in objective.critic.parameters():
            parameter.grad = torch.zeros_like(parameter)
        terms = objective.adversarial_terms(predicted, target, keypoints)
        sum(terms[index] for index in which).backward()
        return predicted.grad, [parameter.grad.clone() for parameter in objective.critic.parameters()]

    fooled_output, fooled_critic = gradients(0)
    critic_output, critic_critic = gradients(1)
    both_output, both_critic = gradients(0, 1)
    assert fooled_output.abs().sum() > 0 and all(not grad.any() for grad in fooled_critic)
    assert critic_output is None and any(grad.any() for grad in critic_critic)
    assert torch.equal(both_output, fooled_output)
    assert all(torch.allclose(a, b) for a, b in zip(both_critic, critic_critic))
    assert all(parameter.requires_grad for parameter in objective.critic.parameters())  # unfrozen again
    with pytest.raises(SigngenError, match="adversarial_loss_weight"):
        load_config("hands", None, ["train.adversarial_loss_weight=-0.1"])


def test_a_critics_gradients_are_clipped_apart_from_the_models(tmp_path, monkeypatch):
    model, critic = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    seen = []
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *args, **kwargs: seen.append(
        (model.weight.grad.abs().item(), critic.weight.grad.abs().item())))

    class Objective(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model, self.critic = model, critic

        def forward(self, batch, step=0):  # gradients 0.5 for the model, 1000 for the critic
            return 0.5 * self.model(batch).sum() / len(batch) + 1000 * self.critic(batch).sum() / len(batch)

    objective = Objective()
    stage = driver.Stage(name="hands", objective=objective, parameters=list(objective.parameters()), modules=[objective],
                         save_model=lambda folder: folder.mkdir(parents=True, exist_ok=True), load_model=lambda folder: None,
                         checkpoint_modules={"critic": critic})
    config = load_config("hands", None, TINY_TRAIN + ["train.max_steps=1", "train.ema_decay=0", "train.max_grad_norm=1.0"])
    driver.train(stage, [torch.ones(1)] * 4, tmp_path / "run", config.train, config, progress=False)
    assert seen == [pytest.approx((0.5, 1.0))]  # together they would be clipped to (0.0005, 1.0)
    saved = tmp_path / "run" / "checkpoints" / "step-0000001"
    assert torch.equal(load_file(str(saved / "critic.safetensors"))["weight"], critic.weight.detach())
    assert not (tmp_path / "run" / "model" / "critic.safetensors").exists()


def records(out) -> list[dict]:
    lines = (out / driver.LOG_NAME).read_text().splitlines()
    return [{key: value for key, value in json.loads(line).items() if key != "elapsed_s"} for line in lines]


def weights(folder) -> dict[str, torch.Tensor]:
    return {f"{path.relative_to(folder)}:{name}": tensor for path in sorted(folder.rglob("*.safetensors"))
            for name, tensor in load_file(str(path)).items()}


@pytest.mark.parametrize("adversarial", [0.0, 0.1])
def test_a_resumed_run_equals_an_uninterrupted_one(adversarial, synthsign_corpus, tmp_path, interrupted_after_step):
    config = load_config("hands", None, TINY_MODEL + TINY_TRAIN + [f"train.adversarial_loss_weight={adversarial}"])
    dataset = FirstItems(crops(synthsign_corpus, config, stride=9), 7)  # 3 batches an epoch: epochs end mid-run

    def run(out, resume=False):
        torch.manual_seed(0)
        train_hands(build_hand_model(config.model), dataset, out, config, resume=resume, progress=False)

    run(tmp_path / "straight")
    with interrupted_after_step(2):
        run(tmp_path / "split")
    with pytest.raises(SigngenError, match="--resume"):
        run(tmp_path / "split")
    run(tmp_path / "split", resume=True)

    straight, split = records(tmp_path / "straight"), records(tmp_path / "split")
    assert [r["step"] for r in straight] == [1, 2, 3, 4, 5] and straight == split
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "split" / "model")
    assert a and a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    assert load_config("hands", tmp_path / "split" / driver.CONFIG_NAME) == config
    # The critic goes on from its checkpoint too: the last ones are equal, and it plays.
    a, b = (weights(tmp_path / run / "checkpoints" / "step-0000005") for run in ("straight", "split"))
    assert sum(key.startswith("critic.safetensors") for key in a) == (len(list(HandCritic().state_dict())) if adversarial else 0)
    assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    assert ("critic_loss" in straight[-1]) == bool(adversarial)


def test_the_command_line_trains_and_resumes(synthsign_corpus, tmp_path, run_cli, cli_error_line):
    out = tmp_path / "hands"
    sets = [part for setting in TINY_MODEL + TINY_TRAIN + ["train.frame_stride=9"] for part in ("--set", setting)]
    code, stdout, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", out, *sets, "--set", "train.max_steps=2")
    assert code == 0, err
    assert "wrote the hand model" in stdout
    code, _, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", out, *sets, "--set", "train.max_steps=3", "--resume")
    assert code == 0, err
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert load_hand_model(out / "model").crop_size == 32
    code, _, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", tmp_path / "other", "--set", "model.crop_size=20")
    assert code == 2 and "crop_size 20 must be divisible" in cli_error_line(err)
    assert not (tmp_path / "other").exists()


def test_render_bases_are_the_first_frame_bent_to_the_pose_and_are_computed_once(synthsign_corpus, tmp_path, monkeypatch):
    from signgen.corpora import hand_bases

    settings = HandCropSettings(crop_size=32, frame_stride=9, base="render")
    dataset = hand_crop_dataset(synthsign_corpus, "train", settings, cache_dir=tmp_path / "cache", progress=False)
    first = [i for i, (_, frame, _) in enumerate(dataset.items) if frame == 0]
    later = [i for i, (_, frame, _) in enumerate(dataset.items) if frame > 0]
    assert first and later
    # The photo warped to its own pose is the photo: at frame 0 the base is the target, sharp.
    for i in first:
        item = dataset[i]
        assert (item["base"] - item["target"]).abs().mean() < 0.02
    # Later the photo's hand, bent to the frame's keypoints, is not the frame's hand.
    assert max((dataset[i]["base"] - dataset[i]["target"]).abs().mean().item() for i in later) > 0.05

    def no_warping(*args, **kwargs):
        raise AssertionError("the cached bases were warped again")

    monkeypatch.setattr(hand_bases, "video_bases", no_warping)
    again = hand_crop_dataset(synthsign_corpus, "train", settings, cache_dir=tmp_path / "cache", progress=False)
    assert torch.equal(again[later[0]]["base"], dataset[later[0]]["base"])
    with pytest.raises(SigngenError, match="base must be one of"):
        hand_crop_dataset(synthsign_corpus, "train", HandCropSettings(base="photo"), cache_dir=tmp_path / "cache")
    with pytest.raises(SigngenError, match="training base"):
        load_config("hands", None, ["train.base=photo"])


def test_a_run_started_from_a_hand_model_takes_its_weights_and_adds_a_detail_head(synthsign_corpus, tmp_path, run_cli,
                                                                                   cli_error_line):
    sets = [part for setting in TINY_MODEL + TINY_TRAIN + ["train.frame_stride=9"] for part in ("--set", setting)]
    code, _, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", tmp_path / "first", *sets, "--set", "train.max_steps=2")
    assert code == 0, err
    first = load_hand_model(tmp_path / "first")
    config = load_config("hands", overrides=TINY_MODEL + ["model.detail_channels=8", f"model.init_from={tmp_path / 'first'}"])
    model = build_hand_model(config.model)
    assert start_from(model, config.model.init_from).startswith(f"model.init_from: {len(first.state_dict())} of ")
    assert all(torch.equal(tensor, first.state_dict()[name]) for name, tensor in model.state_dict().items() if not name.startswith("detail."))
    assert not model.detail.conv_out.weight.any()
    # The command line trains from it; resumed, the checkpoint's weights win over init_from.
    started = ["--set", "model.detail_channels=8", "--set", f"model.init_from={tmp_path / 'first'}"]
    code, stdout, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", tmp_path / "detail", *sets, *started,
                                "--set", "train.max_steps=1")
    assert code == 0, err
    assert load_hand_model(tmp_path / "detail").detail is not None
    (tmp_path / "first" / "model").rename(tmp_path / "gone")
    code, _, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", tmp_path / "detail", *sets, *started,
                           "--set", "train.max_steps=2", "--resume")
    assert code == 0, err
    # A model that crops otherwise, has other widths or is not there: one line, exit 2, nothing written.
    (tmp_path / "gone").rename(tmp_path / "first" / "model")
    for setting, message in (("model.margin=0.5", "crops otherwise: margin 0.35 (this config: 0.5)"),
                             ("model.block_out_channels=[8, 24]", "do not fit this config's model"),
                             (f"model.init_from={tmp_path / 'nowhere'}", "model.init_from: ")):
        code, _, err = run_cli("train", "hands", "--data", synthsign_corpus, "--out", tmp_path / "other", *sets,
                               "--set", f"model.init_from={tmp_path / 'first'}", "--set", setting)
        assert code == 2 and message in cli_error_line(err), setting
        assert not (tmp_path / "other").exists()

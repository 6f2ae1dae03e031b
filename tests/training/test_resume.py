"""The one training driver, for every trainer (fusion, diffusion, temporal, g2p): a run
interrupted at a checkpoint and resumed logs the same losses and ends with the same
weights as an uninterrupted run; every run writes OUT/config.yaml, OUT/log.jsonl and
OUT/model; Ctrl-C keeps a checkpoint; accumulation larger than an epoch is one line."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from signgen.config import load_config, load_g2p_config, load_temporal_config
from signgen.errors import SigngenError
from signgen.models.frame_model import FrameModel
from signgen.poses import skeleton
from signgen.training import driver
from signgen.training.frame import train_diffusion, train_fusion
from signgen.training.g2p import Example, train_g2p
from signgen.training.temporal import train_temporal

# 7 items in batches of 2: 3 batches an epoch (the last item dropped), a number that
# gradient_accumulation_steps=2 does not divide.
ITEMS = 7
TINY_G2P = ["model.hidden_size=16", "model.num_heads=2", "model.ff_size=16", "model.encoder_layers=1",
            "model.decoder_layers=1", "model.aligner_size=8"]
TINY_TEMPORAL = ["train.num_frames=3", "windows.overlap=1", "adapter.levels=[1]"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_pairs(model_config, size: int, seed: int = 0) -> list[dict]:
    (height, width), pose_channels = model_config.resolution, model_config.pose_channels
    generator = torch.Generator().manual_seed(seed)
    return [
        {
            "source": torch.rand(3, height, width, generator=generator) * 2 - 1,
            "target": torch.rand(3, height, width, generator=generator) * 2 - 1,
            "target_pose": torch.rand(pose_channels, height, width, generator=generator),
        }
        for _ in range(size)
    ]


def random_clips(model_config, size: int, num_frames: int) -> list[dict]:
    (height, width), pose_channels = model_config.resolution, model_config.pose_channels
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "source": torch.rand(3, height, width, generator=generator) * 2 - 1,
            "frames": torch.rand(num_frames, 3, height, width, generator=generator) * 2 - 1,
            "poses": torch.rand(num_frames, pose_channels, height, width, generator=generator),
        }
        for _ in range(size)
    ]


def random_sentences() -> list[Example]:
    rng = np.random.default_rng(0)
    examples = []
    for glosses in (["A", "B"], ["B", "C"], ["C", "A", "B"], ["A"], ["B", "A"], ["C"], ["A", "C"]):
        xy = rng.normal(scale=0.3, size=(3 * len(glosses) + 2, skeleton.NUM_POINTS, 2)).astype(np.float32)
        examples.append(Example(glosses, xy, np.ones(xy.shape[:2], dtype=bool)))
    return examples


@pytest.fixture
def trainers(tmp_path, monkeypatch, tiny_frame_config, tiny_frame_model):
    """name -> run(out, train_settings, resume=False): one tiny run of that trainer, a
    fresh model each time; ``train_settings`` are KEY=VALUE of its train section."""

    model_config = tiny_frame_config().model

    def frame_config(section, settings):
        return tiny_frame_config(*[f"{section}.{s}" for s in settings])

    def fusion(out, settings, resume=False):
        config = frame_config("train_fusion", settings + ["eval_every=2", "eval_batch_size=4"])
        torch.manual_seed(0)
        model = FrameModel.from_config(config.model, with_denoiser=False)
        train_fusion(model, random_pairs(model_config, ITEMS), out, config.train_fusion, eval_dataset=random_pairs(model_config, 4, seed=1),
                     resume=resume, progress=False, run_config=config)

    def diffusion(out, settings, resume=False):
        config = frame_config("train_diffusion", settings)
        torch.manual_seed(0)
        model = FrameModel.from_config(config.model)
        train_diffusion(model, random_pairs(model_config, ITEMS), out, config.train_diffusion, resume=resume, progress=False, run_config=config)

    frame_model = tmp_path / "frame-model"
    tiny_frame_model().save_pretrained(frame_model)
    samplers = types.SimpleNamespace(clip_dataset=lambda root, split, num_frames, **_: random_clips(model_config, ITEMS, num_frames))
    monkeypatch.setitem(sys.modules, "signgen.corpora.samplers", samplers)

    def temporal(out, settings, resume=False):
        config = load_temporal_config(None, TINY_TEMPORAL + [f"train.{s}" for s in settings])
        train_temporal(frame_model, "unused", out, config, resume=resume, progress=False)

    def g2p(out, settings, resume=False):
        config = load_g2p_config(None, TINY_G2P + [f"train.{s}" for s in settings])
        train_g2p(random_sentences(), out, config, resume=resume, progress=False)

    return {"fusion": fusion, "diffusion": diffusion, "temporal": temporal, "g2p": g2p}


FAMILY = {"fusion": "frame", "diffusion": "frame", "temporal": "temporal", "g2p": "g2p"}
SETTINGS = ["batch_size=2", "max_steps=5", "checkpoint_every=2", "checkpoints_keep=0", "log_every=1", "warmup_steps=1",
            "ema_decay=0.9", "num_workers=0"]


def records(out) -> list[dict]:
    lines = (out / driver.LOG_NAME).read_text().splitlines()
    return [{key: value for key, value in json.loads(line).items() if key != "elapsed_s"} for line in lines]


def weights(folder) -> dict[str, torch.Tensor]:
    return {f"{path.relative_to(folder)}:{name}": tensor for path in sorted(folder.rglob("*.safetensors"))
            for name, tensor in load_file(str(path)).items()}


@pytest.mark.parametrize("accumulation", [1, 2])
@pytest.mark.parametrize("name", ["fusion", "diffusion", "temporal", "g2p"])
def test_a_resumed_run_equals_an_uninterrupted_one(name, accumulation, trainers, tmp_path, interrupted_after_step):
    run = trainers[name]
    # Interrupted after the checkpoint of step 2 = micro-batch 2 (accumulation 1) or 4
    # (accumulation 2, one optimizer step spanning the end of epoch 0): both mid-epoch.
    settings = SETTINGS + [f"gradient_accumulation_steps={accumulation}"]
    run(tmp_path / "straight", settings)

    with interrupted_after_step(2):
        run(tmp_path / "split", settings)
    assert [c.name for c in driver.list_checkpoints(tmp_path / "split")] == ["step-0000002"]
    with pytest.raises(SigngenError, match="--resume"):
        run(tmp_path / "split", settings)
    run(tmp_path / "split", settings, resume=True)

    straight, split = records(tmp_path / "straight"), records(tmp_path / "split")
    assert [r["step"] for r in straight if "loss" in r] == [1, 2, 3, 4, 5]
    assert straight == split
    a, b = weights(tmp_path / "straight" / "model"), weights(tmp_path / "split" / "model")
    assert a and a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a), name
    for out in (tmp_path / "straight", tmp_path / "split"):
        assert (out / driver.FINAL_MODEL_FOLDER).is_dir() and (out / driver.LOG_NAME).is_file()
        load_config(FAMILY[name], out / driver.CONFIG_NAME)  # the resolved config reads back


def test_a_resumed_run_takes_the_learning_rate_and_weight_decay_it_is_given(trainers, tmp_path, interrupted_after_step, monkeypatch):
    # A linear schedule over 5 steps (1 of warm-up): step k trains at rate * (5 - (k - 1)) / 4.
    settings = SETTINGS + ["lr_schedule=linear", "learning_rate=0.001", "weight_decay=0.0"]
    with interrupted_after_step(2):
        trainers["g2p"](tmp_path / "run", settings)
    stepped = []
    adamw_step = torch.optim.AdamW.step

    def recording_step(optimizer, *args, **kwargs):
        stepped.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"]))
        return adamw_step(optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    lower = [s for s in settings if not s.startswith(("learning_rate", "weight_decay"))] + ["learning_rate=0.0001", "weight_decay=0.01"]
    trainers["g2p"](tmp_path / "run", lower, resume=True)
    assert stepped == [(pytest.approx(1e-4 * (5 - k) / 4), 0.01) for k in (2, 3, 4)]  # steps 3, 4, 5
    logged = {r["step"]: r["lr"] for r in records(tmp_path / "run") if "lr" in r}
    assert logged[2] == pytest.approx(1e-3 * 3 / 4) and logged[3] == pytest.approx(1e-4 * 2 / 4)


def test_ctrl_c_keeps_a_checkpoint_of_the_finished_steps(trainers, tmp_path, monkeypatch):
    after_step = driver.Trainer._after_step

    def interrupt_at_step_3(trainer):
        after_step(trainer)
        if trainer.step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(driver.Trainer, "_after_step", interrupt_at_step_3)
    with pytest.raises(KeyboardInterrupt):
        trainers["g2p"](tmp_path / "run", SETTINGS)
    assert [c.name for c in driver.list_checkpoints(tmp_path / "run")] == ["step-0000002", "step-0000003"]
    assert not (tmp_path / "run" / driver.FINAL_MODEL_FOLDER).exists()


@pytest.mark.parametrize("name", ["temporal", "g2p"])
def test_accumulation_beyond_one_epoch_is_a_one_line_cli_error(name, trainers, tmp_path, monkeypatch, capsys):
    from signgen.cli.main import main

    # 7 items in batches of 2 give 3 batches an epoch, fewer than 4 accumulation steps.
    args = ["train", name, "--data", str(tmp_path), "--out", str(tmp_path / "out"),
            "--set", "train.batch_size=2", "--set", "train.gradient_accumulation_steps=4"]
    if name == "temporal":
        args += ["--frame-model", str(tmp_path / "frame-model")] + [part for s in TINY_TEMPORAL for part in ("--set", s)]
    else:
        # (the trainers fixture stands in for signgen.corpora.samplers)
        monkeypatch.setattr(sys.modules["signgen.corpora.samplers"], "gloss_pose_pairs", lambda root, split: [], raising=False)
        monkeypatch.setattr("signgen.training.g2p.prepare_examples", lambda pairs: random_sentences())
        args += [part for s in TINY_G2P for part in ("--set", s)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "gradient_accumulation_steps 4 exceeds the 3 batches" in err

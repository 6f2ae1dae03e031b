"""`--resume` with a changed model config (issue 26, class 4): the checkpoint's network
would go on training while OUT/config.yaml recorded other widths, so a change under
``model.`` (``adapter.`` for a temporal adapter) is one line naming the changed keys,
with nothing written; training settings may change; a saved config that predates a key
resumes as long as the key keeps its shipped default."""

from __future__ import annotations

import pytest
import yaml

from signgen.config import save_config
from signgen.errors import SigngenError
from signgen.training import driver

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY_G2P = ["train.max_steps=1", "train.batch_size=1", "train.checkpoint_every=1", "train.log_every=1",
            "model.hidden_size=16", "model.num_heads=2", "model.ff_size=16", "model.encoder_layers=1",
            "model.decoder_layers=1", "model.aligner_size=8"]


def snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def saved_run(tmp_path, config):
    out = tmp_path / "run"
    (out / driver.CHECKPOINTS_FOLDER).mkdir(parents=True)
    save_config(config, out / driver.CONFIG_NAME)
    return out


def test_a_changed_unet_width_is_refused_naming_the_key(tmp_path, tiny_frame_config):
    out = saved_run(tmp_path, tiny_frame_config(size="32x24"))
    changed = tiny_frame_config("model.unet.block_out_channels=[16, 32, 32]", "model.fusion.embed_dim=16",
                                "train_diffusion.max_steps=7", size="32x24")
    with pytest.raises(SigngenError) as error:
        driver.check_resumed_config(out, changed)
    message = str(error.value)
    assert "model.unet.block_out_channels [16, 16, 32] -> [16, 32, 32]" in message and "model.fusion.embed_dim 32 -> 16" in message
    assert "train_diffusion" not in message  # training settings may change on resume
    driver.check_resumed_config(out, tiny_frame_config("train_diffusion.max_steps=7", "train_diffusion.learning_rate=0.5",
                                                       size="32x24"))


def test_a_temporal_adapters_config_is_held_too(tmp_path):
    from signgen.config import load_temporal_config

    out = saved_run(tmp_path, load_temporal_config())
    with pytest.raises(SigngenError, match=r"adapter\.num_layers \d+ -> 7"):
        driver.check_resumed_config(out, load_temporal_config(overrides=["adapter.num_layers=7"]))


def test_a_saved_config_without_a_newer_key_resumes_at_its_default(tmp_path, tiny_frame_config):
    config = tiny_frame_config()
    out = saved_run(tmp_path, config)
    saved = yaml.safe_load((out / driver.CONFIG_NAME).read_text())
    del saved["model"]["unet"]["patch_size"]  # as if written before patch_size existed
    (out / driver.CONFIG_NAME).write_text(yaml.safe_dump(saved, sort_keys=False))
    driver.check_resumed_config(out, config)  # the default patch size: what the old run used
    with pytest.raises(SigngenError, match=r"model\.unet\.patch_size 1 -> 4"):
        driver.check_resumed_config(out, tiny_frame_config("model.unet.patch_size=4"))


def test_resuming_g2p_with_a_wider_model_is_one_line_and_changes_nothing(synthsign_corpus, tmp_path, run_cli_fd, cli_error_line):
    out = tmp_path / "run"
    sets = [part for setting in TINY_G2P for part in ("--set", setting)]
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, *sets)
    assert code == 0, err
    before = snapshot(out)
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, "--resume", *sets,
                              "--set", "model.hidden_size=32", "--set", "train.max_steps=2")
    assert code == 2
    line = cli_error_line(err)  # before any data is read: no progress bar
    assert "model.hidden_size 16 -> 32" in line and "start a new --out" in line
    assert snapshot(out) == before
    # The same model with more steps resumes.
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, "--resume", *sets,
                              "--set", "train.max_steps=2")
    assert code == 0, err
    assert len(driver.list_checkpoints(out)) == 2

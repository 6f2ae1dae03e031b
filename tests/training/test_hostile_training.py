"""Hostile --out and --resume for every `signgen train` subcommand (issue 17): one
`signgen: error:` line, exit 2, no traceback, no progress bar, and nothing of the user's
overwritten. The checks run before any data is read, so most cases need no model."""

from __future__ import annotations

import os

import pytest

from signgen.training import driver

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COMMANDS = ["fusion", "diffusion", "temporal", "g2p"]
TINY_G2P = ["train.max_steps=1", "train.batch_size=1", "train.checkpoint_every=1", "train.log_every=1",
            "model.hidden_size=16", "model.num_heads=2", "model.ff_size=16", "model.encoder_layers=1",
            "model.decoder_layers=1", "model.aligner_size=8"]


def train_args(command: str, data, out, *more) -> list:
    """`signgen train COMMAND` with its required options; the models named do not exist,
    as the output checks come before anything is loaded."""
    extra = {"diffusion": ["--fusion-model", out.parent / "no-fusion-model"],
             "temporal": ["--frame-model", out.parent / "no-frame-model"],
             "fusion": ["--eval-split", "none"]}.get(command, [])
    return ["train", command, "--data", data, "--out", out, *extra, *more]


def snapshot(folder) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None for path in sorted(folder.rglob("*"))}


def user_folder(tmp_path):
    """A user's non-empty folder that is not a signgen run (w/ud in the sweep)."""
    folder = tmp_path / "ud"
    (folder / "model").mkdir(parents=True)
    (folder / "config.yaml").write_text("mine\n")
    (folder / "log.jsonl").write_text("my notes, not JSON\n")
    return folder


@pytest.mark.parametrize("command", COMMANDS)
def test_a_fresh_run_refuses_a_users_non_empty_folder(command, synthsign_corpus, tmp_path, run_cli_fd, cli_error_line):
    out = user_folder(tmp_path)
    before = snapshot(out)
    max_steps = "train.max_steps=1" if command in ("temporal", "g2p") else f"train_{command}.max_steps=1"
    code, _, err = run_cli_fd(*train_args(command, synthsign_corpus, out, "--set", max_steps))
    assert code == 2
    line = cli_error_line(err)
    assert str(out) in line and "not empty" in line and "choose another --out or --resume" in line
    assert snapshot(out) == before


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_an_out_that_is_a_file_is_one_line_before_any_progress_bar(command, resume, synthsign_corpus, tmp_path, run_cli_fd,
                                                                   cli_error_line):
    out = tmp_path / "of"
    out.write_text("x\n")
    code, _, err = run_cli_fd(*train_args(command, synthsign_corpus, out, *resume))
    assert code == 2
    assert cli_error_line(err) == f"signgen: error: --out is not a folder: {out}"  # no "reading train poses" bar before it
    assert out.read_text() == "x\n"
    code, _, err = run_cli_fd(*train_args(command, synthsign_corpus, out / "run", *resume))
    assert code == 2 and "is a file" in cli_error_line(err)
    assert out.read_text() == "x\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_resume_needs_a_run_folder_with_checkpoints(command, synthsign_corpus, tmp_path, run_cli_fd, cli_error_line):
    out = user_folder(tmp_path)
    before = snapshot(out)
    checkpoint = tmp_path / "elsewhere" / "step-0000001"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text("{}")
    for resume in (["--resume"], ["--resume", checkpoint]):
        code, _, err = run_cli_fd(*train_args(command, synthsign_corpus, out, *resume))
        assert code == 2
        assert "nothing to resume: no checkpoints under" in cli_error_line(err)
        assert snapshot(out) == before
    code, _, err = run_cli_fd(*train_args(command, synthsign_corpus, tmp_path / "new", "--resume"))
    assert code == 2 and "nothing to resume" in cli_error_line(err)
    assert not (tmp_path / "new").exists()


def test_g2p_fresh_run_in_an_empty_folder_then_resume_with_a_damaged_log(synthsign_corpus, tmp_path, run_cli_fd, cli_error_line):
    out = tmp_path / "run"
    out.mkdir()  # an empty folder is a valid --out for a fresh run
    sets = [part for setting in TINY_G2P for part in ("--set", setting)]
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, *sets)
    assert code == 0, err
    assert (out / driver.FINAL_MODEL_FOLDER).is_dir() and driver.list_checkpoints(out)
    # The same folder again without --resume: it holds checkpoints.
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, *sets)
    assert code == 2 and "already holds checkpoints" in cli_error_line(err)
    for damaged in (b"not json\n", b'{"stage": "g2p"}\n', b"[1, 2]\n", b"\xff\xfe\n"):
        (out / driver.LOG_NAME).write_bytes(damaged)
        code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, "--resume", *sets,
                                  "--set", "train.max_steps=2")
        assert code == 2
        line = cli_error_line(err, only=False)  # after the progress bar of reading the poses
        assert "Traceback" not in err and "log.jsonl" in line and "not a signgen log.jsonl" in line
        assert (out / driver.LOG_NAME).read_bytes() == damaged


def test_a_failed_fresh_run_leaves_a_users_empty_folder_empty(synthsign_corpus, tmp_path, run_cli_fd, cli_error_line, monkeypatch):
    from signgen.errors import SigngenError

    def fail(trainer, batch):
        assert (trainer.out_dir / driver.CONFIG_NAME).is_file()  # written by then
        raise SigngenError("g2p loss became nan at step 1; lower the learning rate")

    monkeypatch.setattr(driver.Trainer, "_micro_step", fail)
    out = tmp_path / "empty"
    out.mkdir()
    sets = [part for setting in TINY_G2P for part in ("--set", setting)]
    code, _, err = run_cli_fd("train", "g2p", "--data", synthsign_corpus, "--out", out, *sets)
    assert code == 2 and "loss became nan" in cli_error_line(err, only=False)
    assert out.is_dir() and os.listdir(out) == []


def test_api_refuses_a_users_folder_before_writing(tmp_path):
    from signgen.errors import SigngenError

    out = user_folder(tmp_path)
    before = snapshot(out)
    with pytest.raises(SigngenError, match="not empty"):
        driver.check_out_dir(out, False)
    with pytest.raises(SigngenError, match="nothing to resume"):
        driver.check_out_dir(out, True)
    assert snapshot(out) == before
    driver.check_out_dir(tmp_path / "new", False)  # a new folder is fine, and is not created
    assert not (tmp_path / "new").exists()

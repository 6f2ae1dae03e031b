"""``signgen pipeline assemble``: a pipeline folder from training outputs, in-process through
``signgen.cli.main.main``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from signgen.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_frame_model, tiny_adapter):
    """What the training commands leave: ``diffusion/model`` and ``temporal/model``."""
    root = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    model = tiny_frame_model()
    (root / "diffusion").mkdir()
    model.save_pretrained(root / "diffusion" / "model")
    adapter = tiny_adapter(model, randomized=True)
    adapter.save_pretrained(root / "temporal" / "model", safe_serialization=True)
    return root


def test_help_names_every_pipeline_setting(capsys):
    from signgen.pipelines.settings import RenderSettings

    with pytest.raises(SystemExit) as exit_info:
        main(["pipeline", "assemble", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "usage: signgen pipeline assemble" in out and "--adapter DIR" in out and "--set KEY=VALUE" in out
    assert "signgen pipeline assemble runs/embedded/diffusion runs/embedded/temporal -o" in out  # the README's line
    for field in dataclasses.fields(RenderSettings):
        assert field.name in out


def test_assemble_from_training_outputs_with_settings(runs, tmp_path, capsys):
    from signgen.pipelines.pipeline import load_pipeline

    out = tmp_path / "pipeline"
    code = main(["pipeline", "assemble", str(runs / "diffusion"), "--adapter", str(runs / "temporal"), "-o", str(out),
                 "--set", "scheduler=ddim", "--set", "guidance_interval=0.5", "--set", "window_size=8", "--set", "num_steps=3"])
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"wrote pipeline {out}")
    pipeline = load_pipeline(out)
    assert pipeline.temporal_adapter is not None
    settings = pipeline.settings
    assert (settings.scheduler, settings.guidance_interval, settings.window_size, settings.num_steps) == ("ddim", 0.5, 8, 3)

    frame_only = tmp_path / "frame_only"
    assert main(["pipeline", "assemble", str(runs / "diffusion" / "model"), "-o", str(frame_only)]) == 0
    assert load_pipeline(frame_only).temporal_adapter is None
    # The README's form: the adapter as the second argument.
    positional = tmp_path / "positional"
    assert main(["pipeline", "assemble", str(runs / "diffusion"), str(runs / "temporal"), "-o", str(positional)]) == 0
    assert load_pipeline(positional).temporal_adapter is not None


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing frame model", "frame model folder not found"),
        ("missing adapter", "temporal adapter folder not found"),
        ("adapter twice", "give the temporal adapter once"),
        ("adapter as frame model", "frame model"),
        ("set without =", "--set needs KEY=VALUE"),
        ("unknown setting", "unknown render setting(s) steps"),
        ("bad setting value", "overlap"),
        ("output is another folder", "refusing to overwrite"),
        ("set without a value", "--set scheduler needs a value"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(runs, tmp_path, capsys, case, message, cli_error_line):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "pipeline"
    frame, adapter = str(runs / "diffusion"), str(runs / "temporal")
    argv = {
        "missing frame model": [str(tmp_path / "nothing"), "-o", str(out)],
        "missing adapter": [frame, "--adapter", str(tmp_path / "nothing"), "-o", str(out)],
        "adapter twice": [frame, adapter, "--adapter", adapter, "-o", str(out)],
        "adapter as frame model": [adapter, "-o", str(out)],
        "set without =": [frame, "-o", str(out), "--set", "num_steps"],
        "unknown setting": [frame, "-o", str(out), "--set", "steps=3"],
        "bad setting value": [frame, "-o", str(out), "--set", "overlap=99"],
        "output is another folder": [frame, "-o", str(work)],
        "set without a value": [frame, "-o", str(out), "--set", "scheduler="],
    }[case]
    (work / "notes.txt").write_text("mine")
    assert main(["pipeline", "assemble", *argv]) == 2
    assert message in cli_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]  # no pipeline, no temporary folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_a_pipeline_folder_is_not_written_over_its_own_inputs(runs, tmp_path, capsys, cli_error_line):
    """Assembling a pipeline into the folder its frame model is read from would replace what
    it reads (and, before this check, reset the folder's settings without a word)."""
    frame = tmp_path / "pipeline" / "frame_model"
    frame.parent.mkdir()
    assert main(["pipeline", "assemble", str(runs / "diffusion"), "-o", str(tmp_path / "first"), "--set", "deflicker=1"]) == 0
    assert main(["pipeline", "assemble", str(tmp_path / "first" / "frame_model"), "-o", str(tmp_path / "first")]) == 2
    assert "holds an input" in cli_error_line(capsys.readouterr().err)
    assert '"deflicker": 1.0' in (tmp_path / "first" / "pipeline.json").read_text()  # left as it was

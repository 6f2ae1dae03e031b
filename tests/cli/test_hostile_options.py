"""Hostile numbers and sizes on the command line (issue 17, classes 4-7 and 9): each is
exit code 2, exactly one ``signgen: error:`` line on stderr, no traceback and nothing
written. Every case fails while the options are read or before any model work."""

from __future__ import annotations

import pytest
from conftest import GSG_A

from signgen.cli.main import build_parser, main


def one_line_error(capsys, args, folder) -> str:
    before = sorted(p.name for p in folder.iterdir())
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("signgen: error: "), err
    assert "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written
    return lines[0]


@pytest.mark.parametrize("case, args, message", [
    # Numbers out of a render setting's range are the settings' to refuse (issue #23), in one line.
    ("nan guidance", ["render", "--gloss", "A", "--guidance", "nan,nan"], "render setting appearance_scale must be a finite number, not nan"),
    ("huge guidance", ["render", "--gloss", "A", "--guidance", "1e30,1e30"], "must be from -30 to 30, not 1e+30"),
    ("inf guidance", ["render", "--gloss", "A", "--guidance", "-inf,1"], "render setting appearance_scale must be a finite number, not -inf"),
    ("one guidance number", ["render", "--gloss", "A", "--guidance", "-5"], "guidance needs two numbers"),
    ("too many steps", ["render", "--gloss", "A", "--steps", "100000"], "render setting num_steps (denoising steps (at most the model's training timesteps)) must be from 1 to 1000, not 100000"),
    ("zero steps", ["render", "--gloss", "A", "--steps", "0"], "render setting num_steps (denoising steps (at most the model's training timesteps)) must be from 1 to 1000, not 0"),
    ("huge seed", ["render", "--gloss", "A", "--seed", "99999999999999999999999"], "--seed: must be from 0 to"),
    ("negative seed", ["render", "--gloss", "A", "--seed", "-1"], "--seed: must be from 0 to"),
    ("base class scheduler", ["render", "--gloss", "A", "--scheduler", "SchedulerMixin"], "unknown scheduler 'SchedulerMixin'"),
    ("score sde scheduler", ["render", "--gloss", "A", "--scheduler", "ScoreSdeVeScheduler"], "for DDPM-trained models"),
    ("flow matching scheduler", ["render", "--gloss", "A", "--scheduler", "FlowMatchEulerDiscreteScheduler"], "for DDPM-trained models"),
    ("nan fps", ["poses", "extract", GSG_A, "--fps", "nan"], "--fps: expected a finite number"),
    ("inf fps", ["poses", "extract", GSG_A, "--fps", "inf"], "--fps: expected a finite number"),
    ("zero fps", ["poses", "extract", GSG_A, "--fps", "0"], "--fps: must be from"),
    ("huge transition", ["poses", "from-gloss", "A", "--transition", "1e9"], "--transition: must be from 0 to 5 s"),
    ("negative transition", ["poses", "from-gloss", "A", "--transition", "-1"], "--transition: must be from 0 to 5 s"),
    ("eval seed", ["eval", "--data", "DATA", "--seed", "99999999999999999999999"], "--seed: must be from 0 to"),
    ("synth seed", ["data", "synth", "--seed", "99999999999999999999999"], "--seed: must be from 0 to"),
    ("synth signers", ["data", "synth", "--signers", "100000"], "--signers must be from 1 to 1000"),
    ("temporal frames", ["train", "temporal", "--data", "DATA", "--frame-model", "M", "--frames", "0"], "--frames: must be from 2"),
])
def test_hostile_numbers_are_one_line(case, args, message, tmp_path, capsys):
    out = {"render": ["-o", tmp_path / "out.mp4"], "poses": ["-o", tmp_path / "out.pose"], "eval": ["--out", tmp_path / "run"],
           "data": ["--out", tmp_path / "corpus"], "train": ["--out", tmp_path / "run"]}[args[0]]
    args = [tmp_path if a == "DATA" else a for a in args]
    assert message in one_line_error(capsys, [*args, *out], tmp_path)


def test_a_negative_guidance_pair_is_a_value_not_an_option():
    args = build_parser().parse_args(["render", "--gloss", "A", "--guidance", "-5,-5", "-o", "x.mp4"])
    assert args.guidance == (-5.0, -5.0)
    args = build_parser().parse_args(["render", "--gloss", "A", "--guidance", "-0.5,2", "-o", "x.mp4"])
    assert args.guidance == (-0.5, 2.0)


def test_a_huge_input_is_not_echoed_back(tmp_path, capsys):
    huge = "x" * 120_000
    line = one_line_error(capsys, ["render", "--gloss", "A", "--guidance", huge, "-o", tmp_path / "out.mp4"], tmp_path)
    assert len(line) < 300 and "…" in line
    line = one_line_error(capsys, ["render", "--gloss", "A", "--scheduler", huge, "-o", tmp_path / "out.mp4"], tmp_path)
    assert len(line) < 500


def test_too_many_glosses_and_too_long_a_video_are_refused_naming_the_limit(tmp_path, capsys):
    many = " ".join(["A"] * 50_000)  # 100,000 characters
    line = one_line_error(capsys, ["poses", "from-gloss", many, "-o", tmp_path / "out.pose"], tmp_path)
    assert "at most 1000 glosses" in line and len(line) < 200
    spelled = "A" * 100_000  # one gloss, fingerspelled letter by letter: days of video
    line = one_line_error(capsys, ["poses", "from-gloss", spelled, "-o", tmp_path / "out.pose"], tmp_path)
    assert "at most 30 minutes" in line and len(line) < 300
    line = one_line_error(capsys, ["render", "--gloss", many, "-o", tmp_path / "out.mp4"], tmp_path)
    assert "at most 1000 glosses" in line


def test_a_skeleton_video_under_another_suffix_is_refused(tmp_path, capsys):
    line = one_line_error(capsys, ["poses", "from-gloss", "A", "-o", tmp_path / "a.pose", "--video", tmp_path / "a.avi"], tmp_path)
    assert "--video must name an .mp4" in line


def test_fingerspelled_glosses_are_named_on_one_stderr_line(tmp_path, capsys):
    assert main(["poses", "from-gloss", "A REGEN SCHNEE REGEN", "-o", str(tmp_path / "a.pose")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["signgen: fingerspelled 2 glosses not in the lexicon: REGEN, SCHNEE"]
    assert main(["poses", "from-gloss", "A B", "-o", str(tmp_path / "b.pose")]) == 0
    assert capsys.readouterr().err == ""  # every gloss in the lexicon: nothing to say


def test_a_warning_before_an_error_is_not_printed(tmp_path, capsys, monkeypatch):
    """Only the error line: a library's warning (torch's pickle warning, a logged warning)
    raised before the error does not precede it."""
    import logging
    import warnings

    from signgen.errors import SigngenError

    def warn_then_fail(args):
        warnings.warn("You are using `torch.load` with `weights_only=False`", FutureWarning)
        logging.getLogger("signgen.test").warning("skipped 3 videos")
        raise SigngenError("the real problem")

    args = build_parser().parse_args(["poses", "info", str(GSG_A)])
    monkeypatch.setattr("signgen.cli.main.build_parser", lambda: _FixedParser(args, warn_then_fail))
    assert main(["poses", "info", str(GSG_A)]) == 2
    assert capsys.readouterr().err == "signgen: error: the real problem\n"


class _FixedParser:
    def __init__(self, args, func):
        args.func = func
        self.args = args

    def parse_args(self, argv):
        return self.args

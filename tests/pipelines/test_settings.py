"""The render settings' one home (issue #23): every setting's default, range, check and saved
form come from :class:`signgen.pipelines.settings.RenderSettings`, and the command line
(``signgen render`` flags and ``--set``, ``signgen pipeline assemble --set``), ``pipeline.json``
and the keywords of a render derive from its fields, so that a new setting shows up everywhere
without being named anywhere else."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys

import numpy as np
import pytest

from signgen.errors import SigngenError
from signgen.pipelines.pipeline import DEFAULT_PIPELINE, SignPipeline, load_pipeline
from signgen.pipelines.settings import MAX_BATCH, MAX_FRAMES_SIGMA, MAX_GUIDANCE, MAX_STEPS, RenderSettings, names, setting

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The settings of the first pipeline.json files; every later one says what they rendered with.
FIRST_SETTINGS = ("scheduler", "num_steps", "appearance_scale", "full_scale", "guidance_interval", "window_size", "overlap",
                  "frame_batch_size", "windows_per_batch")
FIELDS = {spec.name: spec for spec in dataclasses.fields(RenderSettings)}


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message, message
    return message


# ------------------------------------------------------------------ (b) the defaults are the shipped default


def test_every_default_is_the_shipped_pipelines_value():
    shipped = json.loads((DEFAULT_PIPELINE / "pipeline.json").read_text(encoding="utf-8"))
    defaults = RenderSettings()
    assert set(shipped) <= set(names())
    for name in names():
        # A setting newer than the shipped pipeline.json renders it as it did before the setting existed.
        expected = shipped[name] if name in shipped else FIELDS[name].metadata["before"]
        assert getattr(defaults, name) == expected and type(getattr(defaults, name)) is type(expected), name
    assert load_pipeline(None).settings == defaults


def test_the_shipped_default_is_ddim_half_guided_with_consistent_noise_steady_torso_and_deflicker():
    defaults = RenderSettings()
    assert (defaults.scheduler, defaults.guidance_interval, defaults.noise_correlation, defaults.keep_coarse,
            defaults.steady_torso, defaults.deflicker, defaults.strength, defaults.hand_sharpen) == \
        ("ddim", 0.5, 1.0, True, 2.0, 4.0, 1.0, 1.0)


# ------------------------------------------------------------------ (c) older pipeline.json files


def test_every_setting_newer_than_the_first_pipelines_says_what_they_rendered_with():
    newer = set(names()) - set(FIRST_SETTINGS)
    assert newer and all("before" in FIELDS[name].metadata for name in newer), sorted(newer)
    for name in newer:  # the value it had before is a value it accepts
        RenderSettings().replace(**{name: FIELDS[name].metadata["before"]})


@pytest.mark.parametrize("missing", ["all newer", *sorted(set(FIELDS) - set(FIRST_SETTINGS))])
def test_a_pipeline_json_without_the_newer_settings_loads_with_their_before_values(tiny_pipelines, tmp_path, missing):
    folder = shutil.copytree(tiny_pipelines["frame_only"], tmp_path / "old")
    saved = json.loads((folder / "pipeline.json").read_text())
    dropped = [name for name in saved if name not in FIRST_SETTINGS] if missing == "all newer" else [missing]
    for name in dropped:
        del saved[name]
    (folder / "pipeline.json").write_text(json.dumps(saved))
    loaded = load_pipeline(folder).settings
    for name in names():
        expected = FIELDS[name].metadata["before"] if name in dropped else saved[name]
        assert getattr(loaded, name) == expected, name
    if missing == "all newer":  # the shipped values of some differ from their before values: the check bites
        assert any(getattr(RenderSettings(), name) != FIELDS[name].metadata["before"] for name in dropped)


@pytest.mark.parametrize("name", FIRST_SETTINGS)
def test_a_pipeline_json_without_one_of_the_first_settings_is_one_line(tiny_pipelines, tmp_path, name):
    folder = shutil.copytree(tiny_pipelines["frame_only"], tmp_path / "damaged")
    saved = json.loads((folder / "pipeline.json").read_text())
    del saved[name]
    (folder / "pipeline.json").write_text(json.dumps(saved))
    with pytest.raises(SigngenError, match=f"pipeline.json: missing render setting\\(s\\) {name}") as error:
        load_pipeline(folder)
    one_line(error)


def test_saved_settings_load_as_they_were_saved():
    changed = RenderSettings(scheduler="dpm", num_steps=7, deflicker=1.5, keep_coarse=False, strength=0.5, overlap=2)
    assert RenderSettings.from_saved(json.loads(json.dumps(changed.to_dict()))) == changed
    assert RenderSettings(deflicker=2).deflicker == 2.0 and isinstance(RenderSettings(deflicker=2).deflicker, float)
    assert json.loads(json.dumps(RenderSettings(deflicker=2).to_dict()))["deflicker"] == 2.0
    with pytest.raises(SigngenError, match="render settings must be a mapping, not list"):
        RenderSettings.from_saved([1, 2])


def test_replace_changes_only_what_it_is_given():
    settings = RenderSettings()
    assert settings.replace() == settings and settings.replace(num_steps=None) == settings
    assert settings.replace(num_steps=3).num_steps == 3 and settings.num_steps == RenderSettings().num_steps
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.num_steps = 3
    with pytest.raises(SigngenError, match="unknown render setting\\(s\\) speed, steps; known: scheduler, num_steps") as error:
        settings.replace(steps=3, speed=1)
    one_line(error)


# ------------------------------------------------------------------ (d) each bad value, one line


def bad_values() -> list[tuple[str, object, str]]:
    """(setting, value, what the message says) for every field: wrong types, non-finite
    numbers and each side of its range."""
    cases = []
    for name, spec in FIELDS.items():
        kind, low, high = spec.type, spec.metadata["low"], spec.metadata["high"]
        if kind == "bool":
            cases += [(name, value, "must be true or false") for value in ("yes", 1, None, 0.0)]
        elif kind == "str":
            choices = spec.metadata["choices"]
            expected = f"must be one of {', '.join(choices)}" if choices else "must be a name"
            cases += [(name, value, expected) for value in ("", 3, None, b"ddim", *(["no-such-choice"] if choices else []))]
        else:
            what = "whole number" if kind == "int" else "finite number"
            cases += [(name, value, f"must be a {what}") for value in ("10", None, True, math.nan, math.inf, -math.inf, [1])]
            if kind == "int":
                cases.append((name, 2.5, "must be a whole number"))
            bound = f"above {low:g}" if spec.metadata["open_low"] else f"from {low:g}"
            below = low if spec.metadata["open_low"] else low - (1 if kind == "int" else 1e-9)
            cases += [(name, below, f"must be {bound} to {high:g}"), (name, high + (1 if kind == "int" else 1e-6), f"to {high:g}, not")]
    return cases


BAD_VALUES = bad_values()


@pytest.mark.parametrize("name, value, message", BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES])
def test_each_bad_value_is_one_line_naming_the_setting(name, value, message):
    for make in (lambda: RenderSettings(**{name: value}), lambda: RenderSettings.from_saved({**RenderSettings().to_dict(), name: value})):
        with pytest.raises(SigngenError, match=message) as error:
            make()
        assert one_line(error).startswith(f"render setting {name} ")
    if value is not None:  # None in replace() keeps the current value
        with pytest.raises(SigngenError, match=message):
            RenderSettings().replace(**{name: value})


def test_the_limits_are_the_documented_ones():
    assert (FIELDS["num_steps"].metadata["high"], FIELDS["appearance_scale"].metadata["high"], FIELDS["full_scale"].metadata["low"],
            FIELDS["deflicker"].metadata["high"], FIELDS["steady_torso"].metadata["high"], FIELDS["window_size"].metadata["high"]) \
        == (MAX_STEPS, MAX_GUIDANCE, -MAX_GUIDANCE, MAX_FRAMES_SIGMA, MAX_FRAMES_SIGMA, MAX_BATCH)
    assert RenderSettings(strength=1e-9, appearance_scale=-MAX_GUIDANCE, num_steps=MAX_STEPS, deflicker=MAX_FRAMES_SIGMA)


@pytest.mark.parametrize("window_size, overlap", [(4, 4), (4, 5), (1, 1), (MAX_BATCH, MAX_BATCH)])
def test_an_overlap_not_below_the_window_size_is_one_line(window_size, overlap):
    with pytest.raises(SigngenError, match=f"render setting overlap must be less than window_size {window_size}, not {overlap}") as error:
        RenderSettings(window_size=window_size, overlap=overlap)
    one_line(error)
    with pytest.raises(SigngenError, match="overlap must be less than window_size"):
        RenderSettings().replace(window_size=window_size, overlap=overlap)
    assert RenderSettings(window_size=window_size, overlap=window_size - 1).overlap == window_size - 1


def test_a_vanishing_deflicker_width_is_a_setting_and_renders_without_overflow(tiny_pipelines):
    """1e-300 frames is within the range: the filter's weights underflow to zero (no
    OverflowError from squaring 1/sigma), so the frames are the unfiltered ones."""
    assert RenderSettings(deflicker=1e-300).deflicker == 1e-300
    pipeline = load_pipeline(tiny_pipelines["frame_only"])
    tiny = pipeline(glosses="A", seed=1, deflicker=1e-300, num_steps=1, progress=False).frames
    assert np.array_equal(tiny, pipeline(glosses="A", seed=1, deflicker=0, num_steps=1, progress=False).frames)


@pytest.mark.parametrize("value", ["-1", "1e999", "nan"])
def test_a_bad_value_on_the_command_line_is_the_settings_one_line(tiny_pipelines, tmp_path, run_cli, cli_error_line, value):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], "--num-steps", value, "-o", out)
    # "1e999" and "nan" are no whole numbers: the flag's conversion refuses them.
    expected = "render setting num_steps (" if value == "-1" else "argument --num-steps/--steps: expected a whole number"
    assert code == 2 and expected in cli_error_line(err)
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], "--set", f"num_steps={value}", "-o", out)
    assert code == 2 and cli_error_line(err).startswith("signgen: error: render setting num_steps ")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the command line derives from the fields


def test_every_setting_is_a_flag_of_signgen_render_with_its_help_and_range(capsys, monkeypatch):
    from signgen.cli.main import build_parser

    monkeypatch.setenv("COLUMNS", "10000")  # no help line wrapped (argparse also breaks at hyphens)

    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name, spec in FIELDS.items():
        assert f"--{name.replace('_', '-')} " in out, name
        assert " ".join(spec.metadata["help"].split()) in out, name
    assert "--num-steps N, --steps N" in out and "--keep-coarse true|false" in out and "--set KEY=VALUE" in out
    assert "1 to 1000 (embedded default: 10)" in out and "above 0 to 1 (embedded default: 1.0)" in out


def test_flags_and_set_items_give_the_settings_each_once():
    from signgen.cli.main import build_parser
    from signgen.cli.settings import given_settings

    def given(*argv):
        return given_settings(build_parser().parse_args(["render", "--gloss", "A", "-o", "x.mp4", *argv]))

    assert given() == {}
    assert given("--steps", "3") == given("--num-steps", "3") == {"num_steps": 3}
    assert given("--keep-coarse", "false", "--deflicker", "2", "--scheduler", "dpm") == {"keep_coarse": False, "deflicker": 2.0,
                                                                                       "scheduler": "dpm"}
    assert given("--keep-coarse", "Yes")["keep_coarse"] is True
    assert given("--set", "num_steps=3", "--set", "keep_coarse=false", "--set", "scheduler=unipc") == {
        "num_steps": 3, "keep_coarse": False, "scheduler": "unipc"}
    assert given("--set", "num_steps=3", "--deflicker", "2") == {"num_steps": 3, "deflicker": 2.0}
    assert given("--set", "guidance_interval=5e-1") == {"guidance_interval": 0.5}  # YAML 1.1 leaves 5e-1 as text
    with pytest.raises(SigngenError, match="num_steps is given twice"):
        given("--set", "num_steps=3", "--num-steps", "4")
    # Every field is a flag: each takes its default's text back to the default.
    defaults = RenderSettings()
    argv = [item for name in names() for item in (f"--{name.replace('_', '-')}", str(getattr(defaults, name)).lower())]
    assert RenderSettings(**given(*argv)) == defaults


@pytest.mark.parametrize("argv, message", [
    (["--keep-coarse", "maybe"], "argument --keep-coarse: expected true or false, got 'maybe'"),
    (["--num-steps", "2.5"], "argument --num-steps/--steps: expected a whole number, got '2.5'"),
    (["--deflicker", "lots"], "argument --deflicker: expected a number, got 'lots'"),
    (["--set", "num_steps"], "--set needs KEY=VALUE, not 'num_steps'"),
    (["--set", "deflicker=[1"], "--set deflicker: value '[1' is not valid YAML"),
    (["--set", "bogus=1"], "unknown render setting(s) bogus"),
    (["--set", "keep_coarse=maybe"], "render setting keep_coarse must be true or false, not 'maybe'"),
    (["--window-size", "4", "--overlap", "4"], "render setting overlap must be less than window_size 4, not 4"),
])
def test_a_bad_setting_on_the_command_line_is_one_line_and_writes_nothing(tiny_pipelines, tmp_path, run_cli, cli_error_line,
                                                                          argv, message):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], *argv, "-o", out)
    assert code == 2 and message in cli_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_assemble_set_items_are_read_as_the_render_set_items(tiny_pipelines, tmp_path, run_cli):
    out = tmp_path / "pipeline"
    code, _, err = run_cli("pipeline", "assemble", tiny_pipelines["frame_model"], "-o", out, "--set", "keep_coarse=no",
                           "--set", "deflicker=1", "--set", "scheduler=dpm", "--set", "num_steps=3")
    assert code == 0, err
    saved = json.loads((out / "pipeline.json").read_text())
    assert (saved["keep_coarse"], saved["deflicker"], saved["scheduler"], saved["num_steps"]) == (False, 1.0, "dpm", 3)
    assert set(saved) == set(names())
    assert load_pipeline(out).settings == RenderSettings(keep_coarse=False, deflicker=1.0, scheduler="dpm", num_steps=3)


def test_every_setting_is_a_keyword_of_a_render():
    import inspect

    for render in (SignPipeline.__call__,):
        parameters = inspect.signature(render).parameters
        assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in names())


# ------------------------------------------------------------------ (a) a new setting shows up everywhere


@pytest.fixture
def knob(tiny_pipelines, monkeypatch):
    """RenderSettings with one more field, ``fixture_knob``, put in place of the class in
    every signgen module that names it; nothing else is told about the new setting. The
    tiny pipelines are built before (their pipeline.json is older than the knob)."""
    import signgen.cli.main  # noqa: F401 - loads the command modules
    import signgen.cli.pipeline  # noqa: F401
    import signgen.cli.render  # noqa: F401
    import signgen.cli.settings  # noqa: F401
    import signgen.pipelines.folder  # noqa: F401
    import signgen.pipelines.settings as home

    original = home.RenderSettings
    knob_field = setting(0.25, "a test knob of the fixture", 0.0, 1.0, before=0.0)
    extended = dataclasses.make_dataclass("RenderSettings", [("fixture_knob", "float", knob_field)], bases=(original,), frozen=True)
    patched = set()
    for name, module in list(sys.modules.items()):
        if name.startswith("signgen") and getattr(module, "RenderSettings", None) is original:
            monkeypatch.setattr(module, "RenderSettings", extended)
            patched.add(name)
    # The modules that derive something from the fields, all reached by the one name.
    assert {"signgen.pipelines.settings", "signgen.pipelines.folder", "signgen.pipelines.pipeline", "signgen.cli.settings"} <= patched
    assert "fixture_knob" in names()
    return extended


def test_a_new_setting_is_a_flag_and_a_set_key_of_signgen_render(knob, capsys, monkeypatch):
    from signgen.cli.main import build_parser
    from signgen.cli.settings import given_settings

    monkeypatch.setenv("COLUMNS", "10000")

    with pytest.raises(SystemExit):
        build_parser().parse_args(["render", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--fixture-knob X a test knob of the fixture; 0 to 1 (embedded default: 0.25)" in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pipeline", "assemble", "--help"])
    assert "fixture_knob" in capsys.readouterr().out

    def given(*argv):
        return given_settings(build_parser().parse_args(["render", "--gloss", "A", "-o", "x.mp4", *argv]))

    assert given("--fixture-knob", "0.5") == given("--set", "fixture_knob=0.5") == {"fixture_knob": 0.5}


def test_a_new_setting_is_saved_loaded_and_a_keyword_of_a_render(knob, tiny_pipelines, tmp_path, run_cli):
    # pipeline.json written by save_pretrained holds it, with its default or as assembled.
    plain = load_pipeline(tiny_pipelines["frame_only"])
    assert plain.settings.fixture_knob == 0.0  # a pipeline.json older than the setting: its before value
    fresh = SignPipeline(plain.frame_model, None)
    assert fresh.settings.fixture_knob == 0.25
    fresh.save_pretrained(tmp_path / "fresh")
    assert json.loads((tmp_path / "fresh" / "pipeline.json").read_text())["fixture_knob"] == 0.25
    code, _, err = run_cli("pipeline", "assemble", tiny_pipelines["frame_model"], "-o", tmp_path / "set", "--set", "fixture_knob=0.5")
    assert code == 0, err
    assert json.loads((tmp_path / "set" / "pipeline.json").read_text())["fixture_knob"] == 0.5
    pipeline = load_pipeline(tmp_path / "set")
    assert isinstance(pipeline.settings, knob) and pipeline.settings.fixture_knob == 0.5
    assert pipeline.settings.replace(fixture_knob=0.75).fixture_knob == 0.75
    # A keyword of the Python render, checked like every setting.
    frames = pipeline(glosses="A", fixture_knob=0.75, num_steps=1, progress=False).frames
    assert frames.dtype == np.uint8 and len(frames) > 0
    with pytest.raises(SigngenError, match="render setting fixture_knob \\(a test knob of the fixture\\) must be from 0 to 1, not 2") as error:
        pipeline(glosses="A", fixture_knob=2, progress=False)
    one_line(error)


@pytest.mark.parametrize("argv", [["--fixture-knob", "0.5"], ["--set", "fixture_knob=0.5"]])
def test_a_new_setting_renders_from_the_command_line(knob, tiny_pipelines, tmp_path, run_cli, argv):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], "--num-steps", "1", *argv, "-o", out)
    assert code == 0, err
    assert out.is_file()


@pytest.mark.parametrize("argv, item", [(["--fixture-knob", "2"], "fixture_knob=2"), (["--set", "fixture_knob=-1"], "fixture_knob=-1"),
                                        (["--set", "fixture_knob=.nan"], "fixture_knob=.nan")])
def test_a_new_settings_bad_value_is_one_line(knob, tiny_pipelines, tmp_path, run_cli, cli_error_line, argv, item):
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("render", "--gloss", "A", "--model", tiny_pipelines["frame_only"], *argv, "-o", out)
    assert code == 2 and cli_error_line(err).startswith("signgen: error: render setting fixture_knob ")
    code, _, err = run_cli("pipeline", "assemble", tiny_pipelines["frame_model"], "-o", tmp_path / "p", "--set", item)
    assert code == 2 and cli_error_line(err).startswith("signgen: error: render setting fixture_knob ")
    assert list(tmp_path.iterdir()) == []


def test_the_light_settings_module_loads_no_torch():
    import subprocess

    code = "import sys, signgen.pipelines.settings\nassert 'torch' not in sys.modules, 'torch loaded'\n"
    subprocess.run([sys.executable, "-c", code], check=True)

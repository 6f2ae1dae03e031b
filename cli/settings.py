"""The render settings on the command line, derived from their one home.

Every field of :class:`signgen.pipelines.settings.RenderSettings` is a flag of ``signgen
render`` (``--deflicker 2``, its help from the field) and a key of ``--set KEY=VALUE``
(``signgen render`` and ``signgen pipeline assemble``). The flags only turn text into a
number, a bool or a name: ranges are checked once, by the settings themselves.
"""

from __future__ import annotations

import argparse
import dataclasses

from signgen.cli.options import echo
from signgen.config import EXPONENT_NUMBER
from signgen.errors import SigngenError
from signgen.pipelines.settings import RenderSettings

BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per render setting (default: the pipeline's own), and ``--set KEY=VALUE``."""
    group = parser.add_argument_group("render settings", "each defaults to the model's own (its pipeline.json)")
    defaults = RenderSettings()
    for spec in dataclasses.fields(RenderSettings):
        flag = "--" + spec.name.replace("_", "-")
        group.add_argument(flag, *spec.metadata["aliases"], dest=spec.name, metavar=_metavar(spec), type=_parser(spec.type),
                           help=f"{spec.metadata['help']}{_range(spec)} (embedded default: {getattr(defaults, spec.name)})")
    group.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                       help="a render setting by its name, e.g. num_steps=20 (each setting once: by --set or its flag)")


def given_settings(args: argparse.Namespace) -> dict:
    """The settings a command line gives, by ``--set`` items or by flags (each once)."""
    given = parse_set_items(args.settings)
    for spec in dataclasses.fields(RenderSettings):
        if getattr(args, spec.name, None) is not None:
            if spec.name in given:
                raise SigngenError(f"render setting {spec.name} is given twice: by --set and by its flag; give it once")
            given[spec.name] = getattr(args, spec.name)
    return given


def parse_set_items(items: list[str]) -> dict:
    """``--set KEY=VALUE`` items as a dict, each value read as YAML (``10``, ``0.5``, ``ddim``)."""
    import yaml

    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SigngenError(f"--set needs KEY=VALUE, not {echo(item)}")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise SigngenError(f"--set {key.strip()}: value {echo(value)} is not valid YAML") from None
        if isinstance(settings[key.strip()], str) and EXPONENT_NUMBER.fullmatch(value.strip()):
            settings[key.strip()] = float(value)  # 5e-1: a number, though YAML 1.1 reads it as text
        if settings[key.strip()] is None:
            raise SigngenError(f"--set {key.strip()} needs a value (KEY=VALUE); leave the setting out to keep the model's")
    return settings


def _range(spec: dataclasses.Field) -> str:
    low, high = spec.metadata["low"], spec.metadata["high"]
    if low is None:
        return ""
    return f"; {'above ' if spec.metadata['open_low'] else ''}{low:g} to {high:g}"


def _metavar(spec: dataclasses.Field) -> str:
    return {"bool": "true|false", "str": "NAME", "int": "N"}.get(spec.type, "X")


def _parser(kind: str):
    def parse(text: str):
        if kind == "str":
            return text
        if kind == "bool":
            if text.strip().lower() not in BOOLEANS:
                raise argparse.ArgumentTypeError(f"expected true or false, got {echo(text)}")
            return BOOLEANS[text.strip().lower()]
        try:
            value = int(text.strip(), 10) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind == 'int' else ''}number, got {echo(text)}") from None
        return value  # its range, finiteness included, is the settings' to check

    parse.__name__ = {"int": "integer", "float": "number"}.get(kind, kind)
    return parse

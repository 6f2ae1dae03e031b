"""The dependency rule of docs/architecture.md, checked on what imports really load.

cli -> signgen rooms -> poses, video; inside signgen: evaluation -> pipelines, corpora;
training -> models, corpora; pipelines -> models; models -> nothing of the rooms; poses ->
video -> the dependency-free leaves. Each check imports the room's modules in a fresh
interpreter and lists what came along; tests/test_code_shape.py reads every import statement.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import signgen

ROOMS = ("models", "pipelines", "training", "corpora", "evaluation", "demo")
LEAVES = ("signgen", "signgen.errors", "signgen.atomic", "signgen.files", "signgen.config", "signgen.configs")
# What each room may load of the other rooms (beyond itself, the leaves, poses and video).
ALLOWED = {
    "models": (),
    "pipelines": ("models",),
    "corpora": (),
    "training": ("models", "corpora"),
    "evaluation": ("models", "pipelines", "corpora"),
    "demo": ("models", "pipelines"),
}


def modules_of(package: str) -> list[str]:
    module = __import__(package, fromlist=["__path__"])
    return [package] + [f"{package}.{info.name}" for info in pkgutil.iter_modules(module.__path__)]


def loaded_after_importing(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('signgen'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_imports_only_the_rooms_below_it(room):
    loaded = loaded_after_importing(modules_of(f"signgen.{room}"))
    others = {room_of(module) for module in loaded} - {None, room}
    assert others <= set(ALLOWED[room]), f"signgen.{room} loads {sorted(others - set(ALLOWED[room]))}"


def test_inference_never_loads_training():
    loaded = loaded_after_importing(modules_of("signgen.pipelines"))
    assert not any(module.startswith("signgen.training") for module in loaded)


@pytest.mark.parametrize("package", ["signgen.poses", "signgen.video"])
def test_poses_and_video_load_only_the_leaves_of_signgen(package):
    loaded = loaded_after_importing(modules_of(package))
    outside = {m for m in loaded if not m.startswith(("signgen.poses", "signgen.video", "signgen.config."))
               and m not in LEAVES}
    assert not outside, f"{package} loads {sorted(outside)}"


def test_signgen_has_no_loose_modules_beyond_the_leaves():
    top = {info.name for info in pkgutil.iter_modules(signgen.__path__)}
    assert top - set(ROOMS) - {"errors", "atomic", "files", "config", "assets"} <= {"poses", "video", "cli", "configs"}
    assert not list(Path(signgen.__path__[0]).glob("training_*.py"))

"""The temporal adapter started from AnimateDiff's motion modules (``signgen train temporal
--set model.init_from=PATH``, PATH a diffusers ``MotionAdapter`` folder).

signgen's :class:`~signgen.models.temporal.MotionModule` is AnimateDiff's
``AnimateDiffTransformer3D`` with the same parts under the same names (GroupNorm,
``proj_in``, ``BasicTransformerBlock`` with two self-attentions and sinusoidal frame
positions, ``proj_out``, added to its input), and :func:`~signgen.models.temporal.motion_sites`
with ``mid_site="attention"`` puts the modules where ``UNetMotionModel`` puts them: after
each (resnet, attention) pair of a down or up block (after each resnet where a block has no
attention), and in the middle block after each attention, before the resnet that follows it
(``UNetMidBlockCrossAttnMotion`` runs attention, motion module, resnet). So the motion
module of MotionAdapter's ``down_blocks.i.motion_modules.j`` is the one at site
``down_blocks.i.{attentions|resnets}.j``, ``up_blocks`` alike, and
``mid_block.motion_modules.j`` is the one at ``mid_block.attentions.j``. An adapter started
from AnimateDiff keeps these sites in its saved config; signgen's own adapters (default
``mid_site="resnet"``, after ``mid_block.resnets.{j+1}``) are unchanged.

The adapter takes AnimateDiff's heads, transformer layers, norm groups and frame positions
(one value each, for all modules), so that a loaded module computes exactly what its source
computes; every module whose site has the source's width is loaded, the others keep their
identity start and are named, one line each.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from diffusers import MotionAdapter

from signgen.errors import SigngenError
from signgen.models.loading import load_module, read_config
from signgen.models.pretrained import WEIGHT_NAMES
from signgen.models.temporal import TemporalAdapter


def motion_adapter_config(path: str | Path) -> dict:
    """The config of the diffusers MotionAdapter folder ``path`` (its config.json, with
    diffusers' defaults for the fields it leaves out); any other folder is one error line."""
    folder = Path(path)
    if not folder.is_dir():
        raise SigngenError(f"model.init_from: folder not found: {path}")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise SigngenError(f"model.init_from {path} is not a diffusers MotionAdapter folder: it has no config.json")
    config = read_config(config_path, "MotionAdapter config", MotionAdapter,
                         lambda kind: f"model.init_from: {path} holds a {kind}, not a MotionAdapter "
                                      f"(AnimateDiff's motion modules in diffusers' format)")
    defaults = {name: p.default for name, p in inspect.signature(MotionAdapter.__init__).parameters.items() if name != "self"}
    return {**defaults, **{key: value for key, value in config.items() if key in defaults}}


def load_motion_adapter(path: str | Path) -> MotionAdapter:
    """A diffusers MotionAdapter folder (config.json + safetensors weights, the fp16 variant
    accepted as for the UNet: ``signgen.models.pretrained.WEIGHT_NAMES``), loaded strictly."""
    motion_adapter_config(path)
    folder = Path(path)
    weights = next((folder / name for name in WEIGHT_NAMES if (folder / name).is_file()), None)
    if weights is None:
        pickled = any(folder.glob("*.bin")) or any(folder.glob("*.ckpt"))
        raise SigngenError(f"model.init_from: the MotionAdapter folder {path} has no {' or '.join(WEIGHT_NAMES)}"
                           + ("; it holds pickled weights only, signgen reads safetensors" if pickled else ""))
    return load_module(MotionAdapter, folder / "config.json", weights)


def _one_value(value, what: str, path) -> int:
    """The single value of an int or a (nested) list of equal ints."""
    flat = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            flat.append(item)
    if len(set(flat)) != 1:
        raise SigngenError(f"model.init_from: {path} has {what} {value}; signgen's adapter takes one value for every module")
    return int(flat[0])


def motion_adapter_options(path: str | Path, options: dict) -> tuple[dict, list[str]]:
    """The adapter options (the ``adapter:`` section's fields) with the MotionAdapter's
    heads, layers, groups and frame positions, and one line per option changed."""
    config = motion_adapter_config(path)
    layers = [config["motion_transformer_layers_per_block"]]
    if config["use_motion_mid_block"]:
        layers.append(config["motion_transformer_layers_per_mid_block"])
    theirs = {
        "num_attention_heads": _one_value(config["motion_num_attention_heads"], "motion_num_attention_heads", path),
        "attention_head_dim": None,
        "num_layers": _one_value(layers, "transformer layers per motion module", path),
        "norm_num_groups": int(config["motion_norm_num_groups"]),
        "max_frames": int(config["motion_max_seq_length"]),
    }
    notes = [f"adapter.{key} {options.get(key)!r} -> {value!r}, as the MotionAdapter's" for key, value in theirs.items()
             if options.get(key) != value]
    return {**options, **theirs}, notes


def source_name(site: str) -> str:
    """The MotionAdapter module that corresponds to the adapter site ``site``."""
    match = re.fullmatch(r"(down_blocks|up_blocks)\.(\d+)\.(?:attentions|resnets)\.(\d+)", site)
    if match:
        return f"{match[1]}.{match[2]}.motion_modules.{match[3]}"
    match = re.fullmatch(r"mid_block\.attentions\.(\d+)", site)
    if match:
        return f"mid_block.motion_modules.{match[1]}"
    if site.startswith("mid_block.resnets."):
        raise SigngenError(f"the adapter site {site} is after a middle-block resnet; AnimateDiff's middle motion modules "
                           f"run after the attention (an adapter built with mid_site='attention')")
    raise SigngenError(f"no AnimateDiff motion module corresponds to the adapter site {site}")


def import_motion_modules(adapter: TemporalAdapter, source: MotionAdapter, path) -> list[str]:
    """Load every motion module of ``source`` whose shapes fit ``adapter``'s module at the
    same place; returns one line per module left at its initialisation (and why). None
    fitting is a SigngenError naming the first mismatch."""
    notes, loaded = [], 0
    for site, module in zip(adapter.config.sites, adapter.motion_modules):
        name = source_name(site)
        try:
            theirs = source.get_submodule(name)
        except AttributeError:
            notes.append(f"motion module at {site} left at its start: the MotionAdapter has no {name}")
            continue
        state, ours = theirs.state_dict(), module.state_dict()
        bad = next((key for key in ours if key not in state or state[key].shape != ours[key].shape), None)
        if bad is None and set(state) == set(ours):
            module.load_state_dict(state)
            loaded += 1
            continue
        found = theirs.norm.num_channels if hasattr(theirs, "norm") else "?"
        notes.append(f"motion module at {site} ({module.norm.num_channels} channels) left at its start: "
                     f"the MotionAdapter's {name} has {found} channels")
    if not loaded:
        first = notes[0] if notes else "the adapter has no motion modules"
        raise SigngenError(f"model.init_from: no motion module of {path} fits this frame model's UNet ({first})")
    return notes

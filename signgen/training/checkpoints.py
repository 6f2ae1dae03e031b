"""Training checkpoints without pickle, shared by the frame-model, gloss-to-pose and
temporal-adapter trainers.

``torch.save`` and ``accelerator.save_state`` pickle, and loading a pickle runs whatever
code it names; a checkpoint handed on by someone else must be safe to resume from, so
only safetensors and JSON are written and read. A checkpoint is one folder
``CHECKPOINTS/step-NNNNNNN/``::

    <model part>/           the trainer's own model, written by its save_pretrained
    optimizer.safetensors   optimizer tensors, named "<parameter index>.<slot>"
    ema.safetensors         EMA shadow weights "shadow.<i>" (only when EMA is on)
    rng.safetensors         torch RNG states "cpu" and "cuda.<device>"
    training_state.json     step, optimizer hyper-parameters and non-tensor slots,
                            LR-schedule state, EMA settings, the trainer's extras

The folder is built under a temporary name and renamed when complete
(:func:`signgen.atomic.atomic_folder`), and only folders holding ``training_state.json``
count as checkpoints, so an interrupted save is never resumed from.

This module knows nothing of the models: the trainers pass callbacks that save and load
their model part.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from signgen.atomic import atomic_folder
from signgen.errors import SigngenError

CHECKPOINT_PREFIX = "step-"
STATE_NAME = "training_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
EMA_NAME = "ema.safetensors"
RNG_NAME = "rng.safetensors"


def checkpoint_folder(checkpoints: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives; zero-padded so that names sort like steps."""
    return Path(checkpoints) / f"{CHECKPOINT_PREFIX}{step:07d}"


# ------------------------------------------------------------------ optimizer


def save_optimizer_state(optimizer: torch.optim.Optimizer, path: Path) -> dict:
    """Write the optimizer's tensors (Adam moments, step counts) to the safetensors file
    ``path``; return the rest (parameter groups, non-tensor slots) JSON-able, for the
    caller to store beside it."""
    state = optimizer.state_dict()
    tensors, plain = {}, {}
    for index, slots in state["state"].items():
        plain[str(index)] = {}
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().contiguous().cpu()
            else:
                plain[str(index)][key] = value
    save_file(tensors, str(path))
    return {"param_groups": state["param_groups"], "plain_state": plain}


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: Path, meta: dict) -> None:
    """The inverse of :func:`save_optimizer_state`: ``path`` the tensors, ``meta`` what it returned."""
    state: dict[int, dict] = {int(index): dict(slots) for index, slots in meta["plain_state"].items()}
    for name, tensor in load_file(str(path)).items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# ------------------------------------------------------------------ training state


def save_training_state(folder: Path, step: int, optimizer, lr_scheduler, ema, extra: dict | None = None) -> None:
    """Everything but the model that a resumed run needs to continue exactly: optimizer,
    LR schedule, EMA (``None`` when off), RNG states and ``step``, plus the trainer's
    JSON-able ``extra`` fields, into ``folder`` (see the module docstring)."""
    folder = Path(folder)
    optimizer_meta = save_optimizer_state(optimizer, folder / OPTIMIZER_NAME)
    ema_meta = None
    if ema is not None:
        ema_meta = {key: value for key, value in ema.state_dict().items() if key != "shadow_params"}
        save_file({f"shadow.{i}": p.detach().contiguous().cpu() for i, p in enumerate(ema.shadow_params)}, str(folder / EMA_NAME))
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda.{i}": state for i, state in enumerate(torch.cuda.get_rng_state_all())})
    save_file(rng, str(folder / RNG_NAME))
    state = {**(extra or {}), "step": step, "optimizer": optimizer_meta, "lr_scheduler": lr_scheduler.state_dict(), "ema": ema_meta}
    (folder / STATE_NAME).write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")


def load_training_state(folder: Path, optimizer, lr_scheduler, ema) -> dict:
    """Restore what :func:`save_training_state` wrote into the given objects; return the
    JSON record (``step`` and the trainer's extras). The RNG states are set last, so that
    nothing that draws random numbers afterwards (building a model) shifts them."""
    folder = Path(folder)
    state = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
    load_optimizer_state(optimizer, folder / OPTIMIZER_NAME, state["optimizer"])
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    if ema is not None:
        if state.get("ema") is None:
            raise SigngenError(f"checkpoint {folder} has no EMA weights but the config turns EMA on (ema_decay > 0)")
        shadow = load_file(str(folder / EMA_NAME))
        if len(shadow) != len(ema.shadow_params):
            raise SigngenError(f"checkpoint {folder} holds {len(shadow)} EMA weights, the model {len(ema.shadow_params)}")
        # Onto the devices the EMA already lives on: load_state_dict does not move them.
        weights = [shadow[f"shadow.{i}"].to(current.device) for i, current in enumerate(ema.shadow_params)]
        ema.load_state_dict({**state["ema"], "shadow_params": weights})
    rng = load_file(str(folder / RNG_NAME))
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        cuda_states = [rng[key] for key in sorted((k for k in rng if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    return state


# ------------------------------------------------------------------ checkpoint folders


def save_checkpoint(
    checkpoints: Path,
    step: int,
    save_model: Callable[[Path], Any],
    optimizer,
    lr_scheduler,
    ema,
    *,
    keep: int = 0,
    extra: dict | None = None,
) -> Path:
    """Write the checkpoint of ``step`` under the folder ``checkpoints`` and return it.
    ``save_model(folder)`` writes the trainer's model part into the (temporary) checkpoint
    folder; the rest is :func:`save_training_state`. With ``keep > 0`` only the newest
    ``keep`` checkpoints are left. Call it from the main process only."""
    target = checkpoint_folder(checkpoints, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as partial:
        save_model(partial)
        save_training_state(partial, step, optimizer, lr_scheduler, ema, extra)
    prune_checkpoints(checkpoints, keep)
    return target


def load_checkpoint(checkpoint: Path, load_model: Callable[[Path], Any], optimizer, lr_scheduler, ema) -> dict:
    """Resume from ``checkpoint``: ``load_model(folder)`` restores the trainer's model part,
    then :func:`load_training_state`; returns its JSON record (``record["step"]``). A
    checkpoint that does not fit the model or config is one SigngenError line."""
    try:
        load_model(Path(checkpoint))
        return load_training_state(checkpoint, optimizer, lr_scheduler, ema)
    except SigngenError:
        raise
    except SafetensorError as error:
        raise SigngenError(f"cannot resume from {checkpoint}: a file in it is not readable safetensors ({_first_line(error)})") from None
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, AttributeError, IndexError, EOFError) as error:
        raise SigngenError(f"cannot resume from {checkpoint}: it does not match this model and config, or a file in it is "
                           f"damaged ({type(error).__name__})") from None


def _first_line(error: BaseException, limit: int = 120) -> str:
    from signgen.errors import first_line

    line = first_line(error)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def list_checkpoints(checkpoints: Path) -> list[Path]:
    """The complete checkpoints under ``checkpoints``, oldest first."""
    checkpoints = Path(checkpoints)
    if not checkpoints.is_dir():
        return []
    found = [
        path for path in checkpoints.iterdir()
        if path.name.startswith(CHECKPOINT_PREFIX) and path.name[len(CHECKPOINT_PREFIX):].isdigit() and (path / STATE_NAME).is_file()
    ]
    return sorted(found, key=lambda path: int(path.name[len(CHECKPOINT_PREFIX):]))


def latest_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint under ``checkpoints``, or None."""
    found = list_checkpoints(checkpoints)
    return found[-1] if found else None


def prune_checkpoints(checkpoints: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (none when ``keep`` is 0)."""
    if keep <= 0:
        return
    for old in list_checkpoints(checkpoints)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def checkpoint_to_resume(checkpoints: Path, resume: bool | str | Path) -> Path | None:
    """The checkpoint a run starts from: ``resume=True`` the newest under ``checkpoints``,
    a path that checkpoint; ``False`` none, and a folder that already holds checkpoints
    is refused, so that a new run never mixes with an old one."""
    checkpoints = Path(checkpoints)
    if resume is False:
        if list_checkpoints(checkpoints):
            raise SigngenError(f"{checkpoints.parent} already holds checkpoints of a run; pass --resume to continue it or choose another --out")
        return None
    if resume is True:
        newest = latest_checkpoint(checkpoints)
        if newest is None:
            raise SigngenError(f"nothing to resume: no checkpoints under {checkpoints}")
        return newest
    path = Path(resume)
    if not (path / STATE_NAME).is_file():
        raise SigngenError(f"not a training checkpoint (no {STATE_NAME}): {path}")
    return path


def truncate_log(path: Path, step: int) -> None:
    """Drop the lines of the JSON-lines log ``path`` past ``step``: a resumed run writes
    again what came after the checkpoint it resumes from."""
    path = Path(path)
    if not path.exists():
        return
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        kept = [line for line in lines if _record_step(line) <= step]
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as error:
        raise SigngenError(f"cannot resume: the training log {path} is not a signgen log.jsonl "
                           f"({type(error).__name__}); move it away or choose another --out") from None
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _record_step(line: str) -> float:
    """The ``step`` of one log record; a line that is not such a record raises."""
    step = json.loads(line)["step"]
    if isinstance(step, bool) or not isinstance(step, (int, float)):
        raise TypeError("step is not a number")
    return step

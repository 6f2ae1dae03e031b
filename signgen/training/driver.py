"""The one training loop of signgen, on accelerate (one CPU, one GPU or several).

Every stage (fusion, diffusion, temporal, g2p, and the trainers to come) hands
:func:`train` a :class:`Stage`: its objective (an ``nn.Module`` whose
``forward(batch, step)`` returns the loss, or a dict of loss terms with the one to
minimise under ``"loss"``), the parameters it trains, and how its model part is saved and
loaded. Everything else is decided here, once, the same for every stage:

- AdamW and a diffusers LR schedule; warmup and length count optimizer steps (times the
  number of processes, as the prepared scheduler steps once per process);
- EMA of the trained parameters (diffusers ``EMAModel`` with warmup, power 3/4) when
  ``ema_decay > 0``; evaluation and the final model use the EMA weights;
- data order from accelerate's seedable sampler (``data_seed`` = ``seed``, one
  permutation per epoch), so that a resumed run sees the same batches;
- gradient accumulation counted in micro-batches by the loop, not per epoch: an
  optimizer step may span an epoch boundary, and a run resumed at ``step`` continues at
  ``divmod(step * gradient_accumulation_steps, batches_per_epoch)`` (epoch, batch);
- gradient clipping at ``max_grad_norm`` (0 turns it off; a critic's on its own);
- the loss (and any other terms), averaged over the micro-batches since the last record
  and across processes, with ``step``, ``lr`` and ``elapsed_s``, every ``log_every``
  steps into ``OUT/log.jsonl``; a resumed run first drops the records past its checkpoint;
- a checkpoint every ``checkpoint_every`` steps, at the end and on Ctrl-C (then the
  KeyboardInterrupt goes on);
- only the main process writes.

Output folder of every stage::

    OUT/config.yaml                 the resolved config of the run
    OUT/log.jsonl                   one JSON record per log_every steps (and evaluations)
    OUT/checkpoints/step-NNNNNNN/   model part in model/, optimizer, LR schedule, EMA and
                                    RNG state (no pickle: signgen.training.checkpoints),
                                    each checkpoint module as NAME.safetensors
    OUT/model/                      the final model (EMA weights when EMA is on), written
                                    atomically

``resume`` means the same for every stage: ``False`` starts fresh in an ``OUT`` that does
not exist yet or is empty (a folder with anything in it, checkpoints of an earlier run or a
user's files, is refused: nothing of the user's is overwritten), ``True`` continues from
the newest checkpoint under ``OUT/checkpoints``, a path from that checkpoint (into an
``OUT`` that is a run folder: it has ``checkpoints/``). :func:`check_out_dir` makes these
checks; the command line calls it before it reads any data.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import safetensors.torch
import torch
from torch.utils.data import DataLoader, Dataset

from signgen.atomic import FOLDER_TEMPORARY_EXTRA, atomic_folder, check_name_length
from signgen.config import TrainConfig, save_config
from signgen.errors import SigngenError
from signgen.training import checkpoints

FINAL_MODEL_FOLDER = "model"
CHECKPOINTS_FOLDER = "checkpoints"
LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.yaml"


@dataclass
class Stage:
    """What one trainer adds to the loop.

    ``save_model(folder)`` writes the model part as a model folder (the final ``OUT/model``
    and each checkpoint's ``model/``); ``load_model(folder)`` restores it from such a
    folder. ``modules`` are moved to the training device. ``evaluate()`` (main process,
    EMA weights) returns metrics logged every ``eval_every`` steps and at the end.
    ``close()`` runs when the loop ends, however it ends."""

    name: str
    objective: torch.nn.Module
    parameters: list[torch.nn.Parameter]
    modules: Sequence[torch.nn.Module]
    save_model: Callable[[Path], Any]
    load_model: Callable[[Path], Any]
    items: str = "examples"  # what the dataset holds, for messages
    collate_fn: Callable | None = None
    evaluate: Callable[[], dict] | None = None
    eval_every: int = 0
    close: Callable[[], Any] | None = None
    # DDP: some trained parameters may get no gradient in a step (a reference UNet's layers
    # after its last reference feature), so DDP must look for them.
    unused_parameters: bool = False
    # Modules trained beside the model that its folder leaves out (an adversarial critic):
    # each kept in every checkpoint as NAME.safetensors and restored on resume.
    checkpoint_modules: Mapping[str, torch.nn.Module] = field(default_factory=dict)


@dataclass
class TrainResult:
    model_folder: Path
    steps: int
    last_loss: float | None


def find_checkpoint(out_dir: str | Path, resume: bool | str | Path) -> Path | None:
    """The checkpoint a run in ``out_dir`` starts from (see the module docstring)."""
    return checkpoints.checkpoint_to_resume(Path(out_dir) / CHECKPOINTS_FOLDER, resume)


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """The complete checkpoints of the run in ``out_dir``, oldest first."""
    return checkpoints.list_checkpoints(Path(out_dir) / CHECKPOINTS_FOLDER)


def check_out_dir(out_dir: str | Path, resume: bool | str | Path = False) -> None:
    """Refuse, in one SigngenError line, an ``OUT`` a run may not write into (see the
    module docstring): a file (or a path under a file), a non-empty folder for a fresh run,
    a folder without ``checkpoints/`` (or a checkpoint that is not one) for a resumed run.
    Reads only: the command line calls it before any data is read."""
    out_dir = Path(out_dir)
    check_name_length(out_dir, FOLDER_TEMPORARY_EXTRA)  # before a stat() of it raises
    existing = next((path for path in (out_dir, *out_dir.parents) if path.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "" if existing == out_dir else f" ({existing} is a file)"
        raise SigngenError(f"--out is not a folder: {out_dir}{where}")
    if resume is False:
        if not out_dir.is_dir():
            return
        checkpoints.checkpoint_to_resume(out_dir / CHECKPOINTS_FOLDER, False)  # checkpoints: "pass --resume ..."
        try:
            empty = not any(out_dir.iterdir())
        except OSError as error:
            raise SigngenError(f"cannot read --out {out_dir}: {error.strerror or type(error).__name__}") from None
        if not empty:
            raise SigngenError(f"--out {out_dir} exists and is not empty, and a new run would write into it; "
                               f"choose another --out or --resume a run in it")
        return
    if not (out_dir / CHECKPOINTS_FOLDER).is_dir():
        raise SigngenError(f"nothing to resume: no checkpoints under {out_dir / CHECKPOINTS_FOLDER} "
                           f"(--resume continues a run in its own --out)")
    checkpoints.checkpoint_to_resume(out_dir / CHECKPOINTS_FOLDER, resume)


# The config sections that shape the network (frame, g2p, autoencoder: model; temporal:
# adapter): a checkpoint's weights fit only the section it was trained with.
MODEL_SECTIONS = ("model", "adapter")
# Keys of those sections that only say where a fresh run's first weights came from: a
# resumed run takes its weights from the checkpoint, whatever they say now.
START_KEYS = ("model.init_from",)


def check_resumed_config(out_dir: str | Path, run_config: Any) -> None:
    """Refuse, in one SigngenError line naming the keys, to resume the run in ``out_dir``
    with a model config other than the one in its ``OUT/config.yaml``: the checkpoint's
    network would be trained on while config.yaml recorded another. A key the saved config
    lacks (it predates the key) counts as the key's shipped default."""
    import yaml

    from signgen.config import config_to_dict

    path = Path(out_dir) / CONFIG_NAME
    if not path.is_file():
        return
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise SigngenError(f"cannot read the config of the run to resume: {path}") from None
    saved = saved if isinstance(saved, dict) else {}
    # Compared as config.yaml would hold it (tuples as lists, numbers as YAML reads them).
    new = yaml.safe_load(yaml.safe_dump(run_config if isinstance(run_config, dict) else config_to_dict(run_config)))
    defaults = _shipped_defaults(run_config)
    changed = []
    for section in MODEL_SECTIONS:
        if not isinstance(saved.get(section), dict):  # a run saved without it: nothing to hold it to
            continue
        before = {**_flatten(defaults.get(section), section), **_flatten(saved.get(section), section)}
        for key, value in _flatten(new.get(section), section).items():
            if key in before and before[key] != value and key not in START_KEYS:
                changed.append(f"{key} {before[key]!r} -> {value!r}")
    if changed:
        raise SigngenError(f"--resume keeps the model the checkpoints in {out_dir} were trained as, but the model config "
                           f"changed: {'; '.join(changed)}; resume with the saved {path.name} or start a new --out")


def _shipped_defaults(run_config: Any) -> dict:
    """The merged YAML of the shipped config of ``run_config``'s family that holds every
    field (``<family>-defaults.yaml``, else its default tier); {} for a plain dict."""
    from signgen.config import CONFIG_FOLDER, FAMILIES, load_config_dict

    for family, (cls, tier) in FAMILIES.items():
        if type(run_config) is cls:
            full = CONFIG_FOLDER / f"{family}-defaults.yaml"
            return load_config_dict(full if full.is_file() else tier)
    return {}


def _flatten(data: Any, prefix: str) -> dict:
    """Nested mappings as ``{"model.unet.block_out_channels": [...], ...}``."""
    if not isinstance(data, dict):
        return {}
    flat = {}
    for key, value in data.items():
        name = f"{prefix}.{key}"
        flat.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    return flat

def train(
    stage: Stage,
    dataset: Dataset,
    out_dir: str | Path,
    config: TrainConfig,
    run_config: Any,
    *,
    resume: bool | str | Path = False,
    progress: bool = True,
) -> TrainResult:
    """Train ``stage`` on ``dataset`` into ``out_dir`` with the settings of ``config``;
    ``run_config`` (a config dataclass or dict) is saved as ``OUT/config.yaml``.

    ``OUT`` (:func:`check_out_dir`) is created once the inputs are validated; a fresh run
    that fails before its first checkpoint removes what it wrote (``OUT`` itself when it
    created it), so an error leaves nothing behind."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    if resume is not False:
        check_resumed_config(out_dir, run_config)
    created = not out_dir.exists()
    try:
        return Trainer(stage, dataset, out_dir, config, run_config, resume).fit(progress)
    except BaseException:
        if resume is False and out_dir.is_dir() and not list_checkpoints(out_dir) and not (out_dir / FINAL_MODEL_FOLDER).exists():
            if created:
                shutil.rmtree(out_dir, ignore_errors=True)
            else:  # an empty folder of the user's: only what this run wrote into it
                for name in (CONFIG_NAME, LOG_NAME, CHECKPOINTS_FOLDER):
                    path = out_dir / name
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    elif path.exists() or path.is_symlink():
                        path.unlink(missing_ok=True)
        raise


class Trainer:
    """One run: the set-up in ``__init__``, the loop in :meth:`fit`."""

    def __init__(self, stage: Stage, dataset: Dataset, out_dir: Path, config: TrainConfig, run_config: Any, resume: bool | str | Path):
        from accelerate.utils import set_seed
        from diffusers.optimization import get_scheduler
        from diffusers.training_utils import EMAModel

        self.stage, self.config, self.out_dir = stage, config, out_dir
        self.dataset = dataset
        checkpoint = find_checkpoint(out_dir, resume)
        if len(dataset) < config.batch_size:
            raise SigngenError(f"the training set has {len(dataset)} {stage.items}, fewer than batch_size {config.batch_size}")
        self.accelerator = accelerator = _accelerator(config, stage.unused_parameters)
        set_seed(config.seed)
        for module in stage.modules:
            module.to(accelerator.device)
        stage.objective.train()
        processes = accelerator.num_processes
        optimizer = make_optimizer(config, stage.parameters)
        schedule = get_scheduler(config.lr_schedule, optimizer, num_warmup_steps=config.warmup_steps * processes,
                                 num_training_steps=config.max_steps * processes)
        # The loader's own generator: starting an epoch then draws nothing from the global
        # RNG, which a resumed run restores from its checkpoint.
        loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True, collate_fn=stage.collate_fn,
                            num_workers=config.num_workers, generator=torch.Generator().manual_seed(config.seed))
        self.objective, self.optimizer, self.loader, self.schedule = accelerator.prepare(stage.objective, optimizer, loader, schedule)
        self.batches_per_epoch = len(self.loader)
        if self.batches_per_epoch < config.gradient_accumulation_steps:
            raise SigngenError(
                f"gradient_accumulation_steps {config.gradient_accumulation_steps} exceeds the {self.batches_per_epoch} batches "
                f"one epoch gives ({len(dataset)} {stage.items}, batch_size {config.batch_size}); lower one of them")
        # A critic's gradients are clipped on their own: they would otherwise shrink the model's.
        apart = [list(module.parameters()) for module in stage.checkpoint_modules.values()]
        ids = {id(parameter) for group in apart for parameter in group}
        self.clip_groups = [[parameter for parameter in stage.parameters if id(parameter) not in ids], *apart]
        self.ema = EMAModel(stage.parameters, decay=config.ema_decay, use_ema_warmup=True, power=3 / 4) if config.ema_decay > 0 else None
        self.step = 0
        if checkpoint is not None:
            self.step = self._load_checkpoint(checkpoint)
            accelerator.print(f"resuming {stage.name} training from {checkpoint} (step {self.step})")
            self._apply_config_lr_and_weight_decay()
        if accelerator.is_main_process:
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise SigngenError(f"cannot create --out {out_dir}: {error.strerror or type(error).__name__}") from None
            save_config(run_config, out_dir / CONFIG_NAME)
            checkpoints.truncate_log(out_dir / LOG_NAME, self.step)
        self.window: list[dict[str, torch.Tensor]] = []
        self.last_loss: float | None = None
        self.started = time.monotonic()

    def fit(self, progress: bool = True) -> TrainResult:
        """The loop: epochs of micro-batches until ``max_steps`` optimizer steps."""
        from tqdm.auto import tqdm

        config, accelerator = self.config, self.accelerator
        epoch, skip = divmod(self.step * config.gradient_accumulation_steps, self.batches_per_epoch)
        self.bar = tqdm(total=config.max_steps, initial=self.step, desc=f"train {self.stage.name}", unit="step",
                        disable=not (progress and accelerator.is_main_process))
        try:
            while self.step < config.max_steps:
                self.loader.set_epoch(epoch)
                # accelerate passes the epoch to its seedable sampler only, not on to a dataset
                # that draws per epoch (FramePairDataset, RecognitionDataset).
                if hasattr(self.dataset, "set_epoch"):
                    self.dataset.set_epoch(epoch)
                batches = accelerator.skip_first_batches(self.loader, skip) if skip else self.loader
                skip = 0
                for batch in batches:
                    if not self._micro_step(batch):
                        continue
                    self._after_step()
                    if self.step >= config.max_steps:
                        break
                epoch += 1
        except KeyboardInterrupt:
            self._checkpoint_on_interrupt()
            raise
        finally:
            self.bar.close()
            if self.stage.close is not None:
                self.stage.close()
        final = self._save_final()
        accelerator.end_training()
        return TrainResult(model_folder=final, steps=self.step, last_loss=self.last_loss)

    # ---- one micro-batch, one optimizer step ----------------------------------------

    def _micro_step(self, batch) -> bool:
        """Forward and backward one batch; True when it completed an optimizer step."""
        accelerator = self.accelerator
        with accelerator.accumulate(self.objective):
            output = self.objective(batch, self.step)
            losses = output if isinstance(output, dict) else {"loss": output}
            accelerator.backward(losses["loss"])
            if accelerator.sync_gradients and self.config.max_grad_norm > 0:
                model_group, *apart = self.clip_groups
                accelerator.clip_grad_norm_(model_group, self.config.max_grad_norm)
                for group in apart:  # unscaled by the call above (mixed precision unscales once a step)
                    torch.nn.utils.clip_grad_norm_(group, self.config.max_grad_norm)
            self.optimizer.step()
            self.schedule.step()
            self.optimizer.zero_grad(set_to_none=True)
        value = losses["loss"].item()
        if not math.isfinite(value):
            raise SigngenError(f"{self.stage.name} loss became {value} at step {self.step + 1}; lower the learning rate")
        self.window.append({key: term.detach().float() for key, term in losses.items()})
        if not accelerator.sync_gradients:
            return False
        self.step += 1
        if self.ema is not None:
            self.ema.step(self.stage.parameters)
        self.bar.update(1)
        return True

    def _after_step(self) -> None:
        step, config, last = self.step, self.config, self.step == self.config.max_steps
        if step % config.log_every == 0 or last:
            self._log_losses()
        if self.stage.evaluate is not None and (step % self.stage.eval_every == 0 or last):
            self._evaluate()
        if step % config.checkpoint_every == 0 or last:
            self.accelerator.wait_for_everyone()
            self._checkpoint()

    # ---- logging ------------------------------------------------------------------

    def _log_losses(self) -> None:
        """Each term averaged over the window's micro-batches, then across processes."""
        means = {key: torch.stack([terms[key] for terms in self.window]).mean() for key in self.window[0]}
        self.window = []
        values = {key: self.accelerator.reduce(mean, "mean").item() for key, mean in means.items()}
        self.last_loss = values.pop("loss")
        self.bar.set_postfix(loss=f"{self.last_loss:.4f}")
        self._log({"step": self.step, "loss": self.last_loss, "lr": self.schedule.get_last_lr()[0],
                   "elapsed_s": round(time.monotonic() - self.started, 1), **values})

    def _evaluate(self) -> None:
        metrics = {}
        if self.accelerator.is_main_process:
            with ema_weights(self.ema, self.stage.parameters):
                metrics = self.stage.evaluate()
        if metrics:
            self._log({"step": self.step, **metrics})

    def _log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with (self.out_dir / LOG_NAME).open("a", encoding="utf-8") as log:
                log.write(json.dumps({"stage": self.stage.name, **record}) + "\n")

    # ---- checkpoints and the final model ------------------------------------------

    def _checkpoint(self) -> None:
        if not self.accelerator.is_main_process:
            return

        def save_model(folder: Path) -> None:
            self.stage.save_model(folder / FINAL_MODEL_FOLDER)
            for name, module in self.stage.checkpoint_modules.items():
                safetensors.torch.save_model(module, str(folder / f"{name}.safetensors"))

        checkpoints.save_checkpoint(self.out_dir / CHECKPOINTS_FOLDER, self.step, save_model, self.optimizer, self.schedule, self.ema,
                                    keep=self.config.checkpoints_keep, extra={"stage": self.stage.name})

    def _checkpoint_on_interrupt(self) -> None:
        """Keep the finished steps on Ctrl-C: ``resume`` continues from here."""
        folder = self.out_dir / CHECKPOINTS_FOLDER
        if self.step and checkpoints.latest_checkpoint(folder) != checkpoints.checkpoint_folder(folder, self.step):
            self._checkpoint()

    def _load_checkpoint(self, checkpoint: Path) -> int:
        def load_model(folder: Path) -> None:
            self.stage.load_model(folder / FINAL_MODEL_FOLDER)
            for name, module in self.stage.checkpoint_modules.items():
                safetensors.torch.load_model(module, str(folder / f"{name}.safetensors"))

        state = checkpoints.load_checkpoint(checkpoint, load_model, self.optimizer, self.schedule, self.ema)
        if state.get("stage", self.stage.name) != self.stage.name:
            raise SigngenError(f"checkpoint {checkpoint} is of a {state['stage']} run, not {self.stage.name}")
        return int(state["step"])

    def _apply_config_lr_and_weight_decay(self) -> None:
        """A resumed run trains at its config's learning_rate and weight_decay: the
        checkpoint's optimizer and schedule state hold the ones it was saved with, and
        ``--set train.learning_rate=...`` with ``--resume`` would otherwise change nothing.
        The schedule's position and the optimizer's moments stay the checkpoint's."""
        config, schedule = self.config, getattr(self.schedule, "scheduler", self.schedule)
        before = (schedule.base_lrs[0], self.optimizer.param_groups[0]["weight_decay"])
        if before == (config.learning_rate, config.weight_decay):
            return
        # Every group trains at the one configured rate (make_optimizer builds one group).
        for index, group in enumerate(self.optimizer.param_groups):
            schedule.base_lrs[index] = group["initial_lr"] = config.learning_rate
            group["lr"] = config.learning_rate * schedule.lr_lambdas[index](schedule.last_epoch)
            group["weight_decay"] = config.weight_decay
        self.accelerator.print(f"resumed with learning_rate {before[0]:g} -> {config.learning_rate:g}, "
                               f"weight_decay {before[1]:g} -> {config.weight_decay:g} (the config's, not the checkpoint's)")

    def _save_final(self) -> Path:
        """The final model (EMA weights when EMA is on, also left in the parameters) into
        ``OUT/model``, atomically."""
        final = self.out_dir / FINAL_MODEL_FOLDER
        self.accelerator.wait_for_everyone()
        if self.ema is not None:
            self.ema.copy_to(self.stage.parameters)
        if self.accelerator.is_main_process:
            with atomic_folder(final) as partial:
                self.stage.save_model(partial)
        return final


def make_optimizer(config: TrainConfig, parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """AdamW, or bitsandbytes' 8-bit AdamW where the config asks (``optimizer: adamw8bit``,
    stage 2 and 3): a CUDA GPU and the bitsandbytes package, else one error line."""
    kind = getattr(config, "optimizer", "adamw")
    if kind != "adamw8bit":
        return torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    if not torch.cuda.is_available():
        raise SigngenError("optimizer adamw8bit (bitsandbytes) runs on a CUDA GPU only; set optimizer: adamw here")
    try:
        import bitsandbytes
    except ImportError:
        raise SigngenError("optimizer adamw8bit needs bitsandbytes: pip install bitsandbytes (or set optimizer: adamw)") from None
    return bitsandbytes.optim.AdamW8bit(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)


def _accelerator(config: TrainConfig, unused_parameters: bool = False):
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import DistributedDataParallelKwargs, GradientAccumulationPlugin

    # sync_with_dataloader=False: the loop counts micro-batches across epochs, so that the
    # end of an epoch does not cut an accumulation short (and resume stays exact).
    plugin = GradientAccumulationPlugin(num_steps=config.gradient_accumulation_steps, sync_with_dataloader=False)
    try:
        return Accelerator(mixed_precision=config.mixed_precision, gradient_accumulation_plugin=plugin,
                           dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
                           kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=unused_parameters)])
    except ValueError as error:
        raise SigngenError(f"cannot train with mixed_precision={config.mixed_precision!r} here: {error}") from None


class ema_weights:
    """Context: the EMA weights swapped into ``parameters`` (no-op without EMA)."""

    def __init__(self, ema, parameters: list[torch.nn.Parameter]):
        self.ema, self.parameters = ema, parameters

    def __enter__(self):
        if self.ema is not None:
            self.ema.store(self.parameters)
            self.ema.copy_to(self.parameters)

    def __exit__(self, *exc):
        if self.ema is not None:
            self.ema.restore(self.parameters)

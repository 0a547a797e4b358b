"""``Trainer`` and ``fit``: the training loop behind ``manygrad train``.

The loop never forces a host sync inside a step: losses and correct counts stay on the
device and are read together every ``log_every`` steps (one transfer), which is also when a
non-finite loss is noticed; the exact step is then found in the values read back.

Inside a process group of several ranks (``mpiexec``, ``manygrad train --nproc N``) the
trainer trains data-parallel (see ``parallel.py``): each rank takes its slice of every global
batch, rank 0 alone prints and writes the run directory, and the logged sums are all-reduced
in the same single read.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import backend
from . import data as D
from . import guard
from . import parallel as P
from . import precision as precision_mod
from . import run as R
from .parts import (
    DivergedError,
    FitResult,
    SigintDeferred,
    correct_count,
    default_loss,
    diverged,
    make_optimizer,
    make_scheduler,
    read_pending,
)
from .progress import Progress

__all__ = ["DivergedError", "FitResult", "Trainer", "fit"]


class Trainer:
    """Trains a classifier (or a next-token model) on in-memory data, saving a run directory.

    Args:
        model: a ``mg.nn.Module`` (built with ``mg.models.get`` to get a rebuildable recipe).
        train_data: ``"digits"``, an ``(inputs, targets)`` pair, a TensorDataset or ArrayData.
        test_data: held-out data of the same kind (default: the test split of a named set).
        epochs: passes over the training data (default 10).
        batch_size: samples per step (default 64).
        lr: peak learning rate (default 1e-3).
        optimizer: ``"adamw"`` (default), ``"adam"``, ``"sgd"`` or an optimizer instance.
        scheduler: ``"cosine"`` (default), ``"onecycle"``, ``"none"`` or a scheduler built on
            ``optimizer``; stepped after every step.
        weight_decay: (default 0.0).
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:1"``...
        precision: ``"fp32"`` (default), ``"fp16"`` (autocast + GradScaler) or ``"bf16"``
            (on a GPU: bf16 parameters and activations with float32 copies in the
            optimizer, see ``train.precision``; on the CPU: autocast).
        seed: seeds initialisation-independent randomness: order and dropout (default 0).
        out: run directory to write (default: none, nothing is saved).
        normalize: standardise inputs per channel with the training set's statistics
            (default True for image data, ignored for integer token inputs).
        log_every: steps between reads of the loss from the device (default 20).
        progress: show a progress bar (default True).
        callbacks: functions called as ``cb(trainer)`` after every step.
        recipe: extra fields for ``recipe.json`` (e.g. the data's name).
        loss_fn: ``loss_fn(output, target)`` (default cross entropy).
        augment: shift each training image by up to this many pixels (default 0: off).
        label_smoothing: for the default cross-entropy loss (default 0.0).
        stream: read a Dataset batch by batch through ``mg.data.DataLoader`` instead of
            holding it on the device (default False).
        num_workers: DataLoader workers when streaming (default 0).
        distributed: train data-parallel on the ranks of the process group, with
            ``batch_size`` as the global batch (default None: when one of several ranks is
            initialised). Every rank must call ``fit``; rank 0 saves.
        overwrite: write into ``out`` even if it already holds files that are not this
            run's (default False: such a folder is refused).
        cuda_graph: after 3 warm-up steps, capture the training step into a CUDA graph and
            replay it for every full batch (GPU or ``fakegpu``; see ``graphstep.py``);
            the optimizer is made capturable (default False).

    Example:
        >>> model = mg.models.get("mlp")
        >>> result = Trainer(model, "digits", epochs=5).fit()
    """

    def __init__(
        self,
        model,
        train_data,
        test_data=None,
        *,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: Any = "adamw",
        scheduler: Any = "cosine",
        weight_decay: float = 0.0,
        device: Any = "cpu",
        precision: str = "fp32",
        seed: int = 0,
        out: str | None = None,
        normalize: bool = True,
        log_every: int = 20,
        progress: bool = True,
        callbacks: list[Callable] | tuple = (),
        recipe: dict | None = None,
        loss_fn: Callable | None = None,
        augment: int = 0,
        label_smoothing: float = 0.0,
        stream: bool = False,
        num_workers: int = 0,
        distributed: bool | None = None,
        overwrite: bool = False,
        cuda_graph: bool = False,
    ):
        if precision not in ("fp32", "fp16", "bf16"):
            raise ValueError(f"precision must be fp32, fp16 or bf16, got {precision!r}")
        self.device = backend.check_device(backend.device(device))
        if precision != "fp32" and self.device.type == "cpu":
            warnings.warn(guard.CPU_HALF.format(precision), UserWarning, stacklevel=2)
        d = D.setup(train_data, test_data, self.device, normalize, stream, num_workers)
        self.train, self.test, self.fingerprint = d.train, d.test, d.fingerprint
        self.data_name, self.data_extra = d.name, d.extra
        self.classes, self.input_range = d.classes, d.input_range
        self.classification = d.classification
        self.model = model.to(self.device)
        self.bf16_params = precision_mod.end_to_end(precision, self.device)
        if self.bf16_params:  # NOTE: before DDP wraps it, which then sees the bf16 params
            precision_mod.to_bf16(self.model)
        self.shard = (
            P.Shard() if (P.active_group() if distributed is None else distributed) else None
        )
        self.world_size = self.shard.world if self.shard else 1
        self.is_main = self.shard is None or self.shard.rank == 0
        self.net = self.shard.wrap(self.model) if self.shard else self.model  # what trains
        self.epochs, self.batch_size, self.lr = int(epochs), int(batch_size), float(lr)
        self.seed, self.precision, self.out = int(seed), precision, out
        self.overwrite, self.claimed = bool(overwrite), False  # see guard.claim
        self.log_every, self.progress, self.callbacks = max(1, log_every), progress, callbacks
        self.label_smoothing = float(label_smoothing)
        self.loss_fn = loss_fn or (lambda out, y: default_loss(out, y, self.label_smoothing))
        self.steps_per_epoch = -(-self.train.n // self.batch_size)
        self.total_steps = self.epochs * self.steps_per_epoch
        params = list(model.parameters())
        if isinstance(optimizer, str):
            self.optimizer_name = optimizer.lower()
            self.optimizer = make_optimizer(optimizer, params, self.lr, weight_decay)
        else:
            self.optimizer_name, self.optimizer = type(optimizer).__name__.lower(), optimizer
        if scheduler is None or isinstance(scheduler, str):
            self.scheduler_name = scheduler
            self.scheduler = make_scheduler(scheduler, self.optimizer, self.total_steps)
        else:  # a scheduler built by the caller on this optimizer, stepped every step
            self.scheduler_name, self.scheduler = type(scheduler).__name__, scheduler
        if self.bf16_params:  # NOTE: bf16 parameters, float32 copies in the optimizer
            self.optimizer.master_weights = True
        self.scaler = None
        if precision == "fp16":
            from .. import amp

            self.scaler = amp.GradScaler(self.device.type)
        self.weight_decay = weight_decay
        self.augment = int(augment)
        if self.augment and len(self.train.sample_shape) != 3:
            raise ValueError(
                f"augment shifts images (C, H, W); samples here have shape "
                f"{self.train.sample_shape}"
            )
        self.extra_recipe = dict(recipe or {})
        self.graphed = self._graphed_step() if cuda_graph else None
        self.step = 0
        self.history: list[dict] = []
        self.wall_s = 0.0
        self.stop_requested = False
        self._at_boundary = True
        self.saved_step: int | None = None
        # NOTE: ranks draw different dropout masks, as one process does over the whole batch
        backend.manual_seed(self.seed + P.RANK_SEED_STRIDE * (self.shard.rank if self.shard else 0))

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        """Everything needed to continue exactly where training stands."""
        return {
            "model": self._model_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "step": self.step,
            "wall_s": self.wall_s,
            # NOTE: the generator's own dict (JSON in the checkpoint), not the uint8 tensor
            # of the public get_state(); load_state takes either
            "rng": backend.Generator.get_state(backend.generator(self.device)),
            "history": self.history,
        }

    def load_state(self, state: dict) -> None:
        """Restore what :meth:`state` returned (model, optimizer, ..., step, RNG)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
            guard.extend_schedule(self.scheduler, self.optimizer, self.total_steps)
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.wall_s = float(state.get("wall_s", 0.0))
        self.history = list(state.get("history") or [])
        rng, ranks = state["rng"], state.get("rng_ranks") or []
        if self.shard is not None and self.shard.rank:  # this rank's own random state
            rng = ranks[self.shard.rank] if self.shard.rank < len(ranks) else None
        if rng is None:  # resumed with more ranks than saved: a fresh stream
            backend.manual_seed(self.seed + P.RANK_SEED_STRIDE * self.shard.rank + self.step)
        else:
            backend.generator(self.device).set_state(rng)

    def resume(self, run_dir: str) -> None:
        """Load ``run_dir/checkpoint.safetensors``; nothing is written if it doesn't fit."""
        from ..errors import CheckpointError
        from ..io.recipes import read_recipe

        if os.path.isfile(os.path.join(run_dir, R.RECIPE)):
            was = (read_recipe(run_dir).get("data") or {}).get("fingerprint")
            if was and was != self.fingerprint:
                raise CheckpointError(
                    f"{run_dir} was trained on different data (fingerprint {was[:19]}..., now "
                    f"{self.fingerprint[:19]}...): resume with the same data, or start a new run"
                )
        path = os.path.join(run_dir, R.CHECKPOINT)
        try:
            self.load_state(R.load_checkpoint(path, self.device))
        except (CheckpointError, guard.RunDirError):
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
            raise guard.damaged_checkpoint(path, e) from None
        if self.out and os.path.abspath(self.out) == os.path.abspath(run_dir):
            self.claimed = True  # the run's own folder

    def recipe(self) -> dict:
        """The ``recipe.json`` contents for the current state of training."""
        return R.build_recipe(self)

    def save(self, weights: bool = True) -> None:
        """Write recipe, weights and checkpoint into ``out`` (no-op without ``out``)."""
        if not self.out:
            return
        state = self.state()
        if self.shard is not None:  # every rank's random state (dropout), gathered on all
            state["rng_ranks"] = self.shard.gather(state["rng"])
        if not self.is_main:
            self.saved_step = self.step
            return
        from .. import io

        os.makedirs(self.out, exist_ok=True)
        R.save_checkpoint(os.path.join(self.out, R.CHECKPOINT), state)
        if weights:
            io.save(self._model_state(), os.path.join(self.out, R.WEIGHTS))
        R.write_recipe(self.out, self.recipe())
        self.saved_step = self.step

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split=None, batch_size: int = 512) -> dict:
        """Mean loss and accuracy on ``split`` (default: the test data); with several ranks
        each evaluates its share and the sums are all-reduced (every rank must call it)."""
        from .. import autograd

        split = split or self.test
        if split is None:
            return {}
        was = self.model.training
        self.model.eval()
        loss_sum = correct = None
        order = self.shard.eval_order(split.n) if self.shard else np.arange(split.n)
        with autograd.no_grad(), self._autocast(), backend.device_scope(self.device):
            for xb, yb in split.iterate(order, batch_size):
                out = self.model(self._input(xb))
                lo = self.loss_fn(out, yb).float() * xb.shape[0]
                loss_sum = lo if loss_sum is None else loss_sum + lo
                if self.classification:
                    c = correct_count(out, yb)
                    correct = c if correct is None else correct + c
        self.model.train(was)
        if self.shard is not None:
            loss_sum, correct = self.shard.sum_tensors([loss_sum, correct], self.device)
            correct = correct if self.classification else None  # a rank may have had no share
        res = {"loss": float(loss_sum.item()) / split.n}
        if correct is not None:
            per = split.targets_per_sample  # tokens per sample for sequence targets
            res["accuracy"] = float(correct.item()) / (split.n * per)
        return res

    def _model_state(self) -> dict:
        """The model's state dict, in float32 when its parameters train in bf16."""
        if self.bf16_params:
            return precision_mod.float32_state_dict(self.model, self.optimizer)
        return self.model.state_dict()

    def _autocast(self):
        if self.precision == "fp32" or self.bf16_params:
            return contextlib.nullcontext()
        import manygrad as mg

        dt = mg.float16 if self.precision == "fp16" else mg.bfloat16
        return mg.autocast(self.device.type, dtype=dt)

    # ------------------------------------------------------------------ the loop
    def _train_step(self, xb, yb, weight: float = 1.0):
        if self.graphed is not None:
            out, loss = self.graphed(xb, yb, weight)
        else:
            out, loss = self._forward_backward(xb, yb, weight)
            self._optimizer_step()
        if self.scheduler is not None:
            self.scheduler.step()
        return out, loss

    def _input(self, xb):
        """A batch as the model takes it (bf16 when its parameters train in bf16)."""
        return precision_mod.cast_input(xb) if self.bf16_params else xb

    def _forward_backward(self, xb, yb, weight: float = 1.0):
        with self._autocast():
            out = self.net(self._input(xb))
            loss = self.loss_fn(out, yb)
        self.optimizer.zero_grad(set_to_none=True)
        # NOTE: DDP averages the ranks' gradients; weighting a rank's mean loss by its share
        # of the global batch makes that average the gradient of the whole batch's mean.
        scaled = loss * weight if weight != 1.0 else loss
        if self.scaler is not None:
            self.scaler.scale(scaled).backward()
        else:
            scaled.backward()
        return out, loss

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()

    def _make_capturable(self) -> None:
        """lr and step count on the device (again after load_state_dict's new groups)."""
        for group in self.optimizer.param_groups:
            if "capturable" in group:
                group["capturable"] = True
        if hasattr(self.optimizer, "capturable"):
            self.optimizer.capturable = True

    def _graphed_step(self):
        from . import graphstep

        graphstep.check_device(self.device)
        self._make_capturable()
        ddp = self.net if self.shard is not None else None
        return graphstep.GraphedStep(
            self._forward_backward,
            self._optimizer_step,
            reduce=ddp.finish_gradient_synchronization if ddp is not None else None,
            no_sync=ddp.no_sync if ddp is not None else None,
        )

    def fit(self) -> FitResult:
        """Train until ``epochs`` are done (or Ctrl-C); returns a :class:`FitResult`."""
        lock = guard.claim(self)
        try:
            return self._fit()
        finally:
            if lock is not None:
                lock.release()

    def _fit(self) -> FitResult:
        if self.out and self.is_main:
            os.makedirs(self.out, exist_ok=True)
            R.truncate_metrics(self.out, self.step)
            R.write_recipe(self.out, self.recipe())
        writer = R.event_writer(self.out) if self.out and self.is_main else None
        if self.graphed is not None:
            self._make_capturable()
        self.net.train()
        where = str(self.device) + (f" x {self.world_size} ranks" if self.shard else "")
        bar = Progress(self.progress, where, bar=self.is_main)
        interrupted = False
        try:
            with (
                SigintDeferred() as sigint,
                warnings.catch_warnings(),
                backend.quiet_float_errors(),
                backend.device_scope(self.device),  # NOTE: CuPy works on the current GPU
            ):
                if self.scaler is not None:  # a step skipped for inf grads is expected here
                    warnings.filterwarnings("ignore", r"lr_scheduler\.step\(\) was called")
                start_epoch = self.step // self.steps_per_epoch
                for epoch in range(start_epoch, self.epochs):
                    self._run_epoch(epoch, bar, writer, sigint)
                    if self.stop_requested:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            bar.close()
            # NOTE: a step cut in half (second Ctrl-C) leaves no consistent state to save;
            # the checkpoint of the last epoch end stays.
            if self.out and self._at_boundary:
                self.save()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            for split in (self.train, self.test):  # NOTE: streamed data's loader workers
                getattr(split, "close", lambda: None)()
        if self.shard is not None:
            self.shard.barrier()  # the run directory is complete when any rank returns
        metrics = self.history[-1] if self.history else {}
        return FitResult(
            self.model, metrics, self.history, self.out, self.step, interrupted, self.saved_step
        )

    def _run_epoch(self, epoch: int, bar: Progress, writer, sigint) -> None:
        order = D.epoch_order(self.seed, epoch, self.train.n)
        nb = self.steps_per_epoch
        skip = self.step - epoch * nb
        shifts = None
        if self.augment:
            off = D.shift_offsets(self.seed, epoch, self.train.n, self.augment)
            shifts = backend.to_device(off, self.device)
        bar.start_epoch(epoch + 1, self.epochs, nb, skip)
        pending: list = []
        loss_sum = seen = correct_sum = 0.0
        t0 = time.perf_counter()
        samples = 0
        self._at_boundary = True
        batches = self.train.iterate(order, self.batch_size, skip, self.shard)
        for b, (xb, yb) in enumerate(batches, skip):
            n = gn = min(self.batch_size, self.train.n - b * self.batch_size)  # global batch
            lo, weight = 0, 1.0
            if self.shard is not None:
                lo, hi = self.shard.bounds(gn)
                n, weight = hi - lo, self.shard.weight(gn)
            if shifts is not None:
                at = b * self.batch_size + lo
                xb = D.random_shift(xb, shifts[at : at + xb.shape[0]], self.augment)
            self._at_boundary = False
            out, loss = self._train_step(xb, yb, weight)
            self.step += 1
            self._at_boundary = True
            samples += gn
            c = correct_count(out.detach(), yb) if self.classification else None
            if n == 0:  # this rank ran a stand-in sample (see Shard.take)
                loss, c = loss * 0, (c * 0 if c is not None else None)
            pending.append((loss.detach(), c, n, gn))
            flush = len(pending) >= self.log_every or b == nb - 1
            if flush:
                ls, cs, ns, stop = self._flush(pending, sigint.requested)
                loss_sum += ls
                correct_sum += cs
                seen += ns
                pending = []
                rate = samples / max(time.perf_counter() - t0, 1e-9)
                acc = correct_sum / self._units(seen) if self.classification else None
                bar.update(b + 1, loss_sum / max(seen, 1), acc, rate)
                if writer is not None:
                    writer.add_scalars({"loss/train_step": ls / max(ns, 1)}, self.step)
            for cb in self.callbacks:
                cb(self)
            # with several ranks, all stop together at a flush (a stop is all-reduced there)
            if (flush and stop) if self.shard else sigint.requested:
                raise KeyboardInterrupt
        dt = time.perf_counter() - t0
        self.wall_s += dt
        row = {
            "epoch": epoch + 1,
            "step": self.step,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct_sum / self._units(seen) if self.classification else None,
            "samples_per_s": samples / max(dt, 1e-9),
            "wall_s": self.wall_s,
        }
        ev = self.evaluate()
        row["test_loss"], row["test_accuracy"] = ev.get("loss"), ev.get("accuracy")
        self.history.append(row)
        bar.end_epoch(row)
        if self.out:
            if self.is_main:
                R.append_metrics(self.out, row)
            if writer is not None:
                writer.add_scalars(
                    {f"epoch/{k}": v for k, v in row.items() if isinstance(v, float)}, self.step
                )
                writer.flush()
            self.save(weights=True)

    def _units(self, samples: float) -> float:
        return max(samples * self.train.targets_per_sample, 1)

    def _flush(self, pending: list, stop: bool = False) -> tuple[float, float, int, bool]:
        """Read the pending losses (one transfer; with several ranks, one all-reduce of the
        sums and of ``stop`` first); raise on the first non-finite loss."""
        losses, ns, correct, stop = read_pending(
            pending, self.classification, self.shard, self.device, stop
        )
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            step = self.step - len(pending) + int(bad[0]) + 1
            raise diverged(float(losses[bad[0]]), step, self.steps_per_epoch, self.lr)
        return float((losses * ns).sum()), correct, int(ns.sum()), stop


def fit(model, data, test=None, **kwargs) -> FitResult:
    """Train ``model`` on ``data``; the Python API of ``manygrad train``.

    Args:
        model: a ``mg.nn.Module``.
        data: ``"digits"``, an ``(inputs, targets)`` pair, a TensorDataset or ArrayData.
        test: held-out data (default: the named data set's test split).
        **kwargs: see :class:`Trainer` (``epochs``, ``batch_size``, ``lr``, ``device``,
            ``precision``, ``seed``, ``out``, ``resume``...).

    Example:
        >>> result = mg.train.fit(mg.models.get("mlp"), "digits", epochs=5)
        >>> result.metrics["test_accuracy"]
    """
    resume = kwargs.pop("resume", None)
    if resume and not kwargs.get("out"):
        kwargs["out"] = resume
    trainer = Trainer(model, data, test, **kwargs)
    if resume:
        trainer.resume(resume)
    return trainer.fit()

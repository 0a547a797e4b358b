"""``torch.optim.swap_in_optimizer_params_and_state``: step an optimizer on other tensors.

Inside the context the optimizer's ``param_groups`` hold the given parameters (and the
options of the given state dict's groups) and its ``state`` the given per-parameter state,
so ``optimizer.step()`` updates those tensors; on exit the live optimizer is restored.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from ..tensor import Tensor


def _fail(msg: str) -> RuntimeError:
    return RuntimeError(f"swap_in_optimizer_params_and_state: {msg}")


def _check_group(i: int, live: dict, swapin: Any) -> list[int]:
    """The packed ids of swap-in group ``i``, checked against live group ``live``."""
    if not isinstance(swapin, dict):
        raise _fail("requires each optimizer param group to be a dictionary.")
    ids = swapin.get("params")
    if not isinstance(ids, list) or not all(isinstance(k, int) for k in ids):
        raise _fail(
            "requires optimizer.state_dict()-style param_groups[*]['params'] entries keyed "
            "by packed parameter ids."
        )
    if len(live["params"]) != len(ids):
        raise _fail(
            f"swapin_optim_state param group {i} has a different number of params than the "
            "live optimizer param group."
        )
    only_swapin = [k for k in swapin if k not in live]
    only_live = [k for k in live if k not in swapin]
    if only_swapin or only_live:
        raise _fail(
            "requires optimizer.state_dict()-style param group keys to exactly match the live "
            f"optimizer group keys for group {i}. Keys only in swap-in: {only_swapin}. Keys "
            f"only in live: {only_live}."
        )
    return ids


def _prepare(optimizer, params: dict, osd: Any):
    if not optimizer.state:
        raise _fail(
            "requires initialized optimizer state (take one optimizer.step() first, or load a "
            "state dict)."
        )
    if not isinstance(osd, dict):
        raise _fail("requires an optimizer.state_dict()-style dict for swapin_optim_state.")
    state, groups = osd.get("state"), osd.get("param_groups")
    if not isinstance(state, dict):
        raise _fail(
            "requires swapin_optim_state['state'] to be a dict mapping packed parameter ids "
            f"to per-param state dicts, got {type(state).__name__}."
        )
    if any(isinstance(k, Tensor) for k in state):
        raise _fail("requires optimizer.state_dict()-style state keyed by packed parameter ids.")
    if any(isinstance(k, int) and not isinstance(v, dict) for k, v in state.items()):
        raise _fail("requires per-parameter optimizer state entries to be dictionaries.")
    if not isinstance(groups, list):
        raise _fail(
            "requires swapin_optim_state['param_groups'] to be a list of param-group dicts, "
            f"got {type(groups).__name__}."
        )
    if len(groups) != len(optimizer.param_groups):
        raise _fail(
            "swapin_optim_state has a different number of parameter groups than the live optimizer."
        )
    flat = list(params.values())
    plan, seen, off = [], set(), 0
    for i, (live, swapin) in enumerate(zip(optimizer.param_groups, groups)):
        ids = _check_group(i, live, swapin)
        seen.update(ids)
        if off + len(ids) > len(flat):
            raise _fail(
                "requires the explicit parameter state to match optimizer.param_groups "
                "ordering (fewer swap-in parameters than the optimizer has)."
            )
        plan.append((live, swapin, flat[off : off + len(ids)]))
        off += len(ids)
    extra = [k for k in state if k not in seen]
    if extra:
        raise _fail(
            "requires swapin_optim_state['state'] to be keyed only by packed parameter ids "
            f"from param_groups[*]['params']; got extra keys {extra!r}."
        )
    return state, plan


@contextlib.contextmanager
def swap_in_optimizer_params_and_state(
    optimizer, swapin_parameters: dict[str, Tensor], swapin_optim_state: dict[str, Any]
):
    """Temporarily give ``optimizer`` other parameters and state; restore them on exit.

    Args:
        optimizer: the live optimizer (its state must exist: step it once, or load one).
        swapin_parameters: tensors to optimize inside the context, in the order of the
            optimizer's parameters (e.g. ``dict(model.named_parameters())`` of a copy).
        swapin_optim_state: an ``optimizer.state_dict()``-shaped dict whose state (keyed
            by packed ids) and group options are installed. In-place updates of its
            tensors (moments, step counts) are what the caller sees afterwards; new
            entries or reassignments inside the context are dropped.

    Example:
        >>> with mg.optim.swap_in_optimizer_params_and_state(opt, params, osd):
        ...     opt.step()  # updates the tensors of params and osd in place
    """
    state, plan = _prepare(optimizer, swapin_parameters, swapin_optim_state)
    live_state = optimizer.state
    snapshots = [dict(g) for g in optimizer.param_groups]
    try:
        swapped: defaultdict = defaultdict(dict)
        for live, swapin, params in plan:
            live["params"] = params
            live.update({k: v for k, v in swapin.items() if k != "params"})
            for p, pid in zip(params, swapin["params"]):
                swapped[p] = dict(state.get(pid, {}))
        optimizer.state = swapped
        yield
    finally:
        for g, snap in zip(optimizer.param_groups, snapshots):
            g.clear()
            g.update(snap)
        optimizer.state = live_state


__all__ = ["swap_in_optimizer_params_and_state"]

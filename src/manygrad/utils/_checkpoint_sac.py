"""Selective activation checkpointing (``torch.utils.checkpoint``'s ``CheckpointPolicy``,
``create_selective_checkpoint_contexts``) and the op watchers behind ``context_fn``.

An op here is a manygrad op class (an ``autograd.Function`` subclass such as
``manygrad.ops.linalg.Matmul``; ``type(y.grad_fn)`` names the op that made ``y``). The
watchers see every op that runs through ``Function.apply`` inside the checkpointed function,
with its arguments and output, as PyTorch's dispatch modes see ATen ops.

NOTE: what a ``*_SAVE`` decision changes. PyTorch keeps such an op's output and skips the op
when it recomputes. A manygrad op keeps what its backward needs while it runs, so the
recomputation runs every op again (and so builds a consistent graph); the policy is called
for every op of the forward exactly as in PyTorch, the saved outputs are kept until
backward, and the recomputation is checked against them (the same ops in the same order,
outputs of the same shape, dtype and device, and no saved output changed in place).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable

from .. import autograd
from ..errors import AutogradError
from ..tensor import Tensor


class CheckpointError(AutogradError):
    """The recomputation in backward did not match the checkpointed forward
    (``torch.utils.checkpoint.CheckpointError``, a RuntimeError)."""


class CheckpointPolicy(enum.Enum):
    """Whether an op's output is saved in the forward or recomputed in backward.

    ``MUST_*`` and ``PREFER_*`` are alike in eager runs (``MUST`` forbids a compiler to
    override the choice); the ``*_CPU_OFFLOAD`` ones save as ``*_SAVE`` do. A policy that
    always answers ``PREFER_RECOMPUTE`` is plain checkpointing.
    """

    MUST_SAVE = 0
    PREFER_SAVE = 1
    MUST_RECOMPUTE = 2
    PREFER_RECOMPUTE = 3
    MUST_CPU_OFFLOAD = 4
    PREFER_CPU_OFFLOAD = 5


_SAVES = (
    CheckpointPolicy.MUST_SAVE,
    CheckpointPolicy.PREFER_SAVE,
    CheckpointPolicy.MUST_CPU_OFFLOAD,
    CheckpointPolicy.PREFER_CPU_OFFLOAD,
)


class SelectiveCheckpointContext:
    """What a policy function learns about an op besides the op and its arguments:
    ``op_output``, its output, and ``is_recompute`` (always False: the policy is only
    called in the forward).

    Example:
        >>> def policy(ctx, op, *args, **kwargs):
        ...     return CheckpointPolicy.MUST_SAVE if op is Matmul else CheckpointPolicy.PREFER_RECOMPUTE
    """

    def __init__(self, *, is_recompute: bool, op_output=None) -> None:
        self.is_recompute = is_recompute
        self.op_output = op_output


# NOTE: PyTorch skips its detach and device-query ops; manygrad runs neither as an op
SAC_IGNORED_OPS: set = set()

_RECOMPUTE = object()
_CONSUMED = object()
_MISMATCH = (
    "This can happen if the operations in the checkpointed region are nondeterministic or "
    "depend on global state that changed between forward and backward."
)


class OpWatch:
    """A context manager that calls ``on_op(ctx, args, kwargs, out)`` after each op that
    runs inside it (chained onto ``autograd._trace``, so an enclosing watcher still sees
    the ops). Re-enterable, as PyTorch's context_fn contexts are."""

    def __init__(self, on_op: Callable | None = None) -> None:
        self._on_op = on_op
        self._prev: list = []

    def on_op(self, ctx, args, kwargs, out) -> None:
        if self._on_op is not None:
            self._on_op(ctx, args, kwargs, out)

    def __enter__(self):
        prev = autograd._trace
        self._prev.append(prev)

        def hook(ctx, args, kwargs, out):
            if prev is not None:
                prev(ctx, args, kwargs, out)
            self.on_op(ctx, args, kwargs, out)

        autograd._trace = hook
        return self

    def __exit__(self, *exc) -> bool:
        autograd._trace = self._prev.pop()
        return False


class _Caching(OpWatch):
    """The forward's watcher: asks the policy about each op and keeps the outputs of the
    ops it saves."""

    def __init__(self, policy_fn, storage) -> None:
        super().__init__()
        self.policy_fn, self.storage = policy_fn, storage
        self.counter: defaultdict = defaultdict(int)

    def on_op(self, ctx, args, kwargs, out) -> None:
        op = type(ctx)
        if op in SAC_IGNORED_OPS:
            return
        idx = self.counter[op]
        self.counter[op] += 1
        sac = SelectiveCheckpointContext(is_recompute=False, op_output=out)
        policy = self.policy_fn(sac, op, *args, **(kwargs or {}))
        if isinstance(policy, bool):  # NOTE: PyTorch's older policies answer a bool
            policy = CheckpointPolicy.MUST_SAVE if policy else CheckpointPolicy.PREFER_RECOMPUTE
        if not isinstance(policy, CheckpointPolicy):
            raise TypeError(
                f"selective checkpoint: the policy function returned {policy!r} for op "
                f"{op.__name__}; return a CheckpointPolicy (or a bool)"
            )
        if policy in _SAVES:
            self.storage[op][idx] = (out, out._version if isinstance(out, Tensor) else None)
        else:
            self.storage[op][idx] = _RECOMPUTE


class _Cached(OpWatch):
    """The recomputation's watcher: checks each op against what the forward recorded."""

    def __init__(self, storage, allow_cache_entry_mutation: bool) -> None:
        super().__init__()
        self.storage, self.allow_mutation = storage, allow_cache_entry_mutation
        self.counter: defaultdict = defaultdict(int)

    def __enter__(self):
        self.counter.clear()  # NOTE: a second backward meets "an extra time", as PyTorch
        return super().__enter__()

    def on_op(self, ctx, args, kwargs, out) -> None:
        op = type(ctx)
        if op in SAC_IGNORED_OPS:
            return
        idx = self.counter[op]
        self.counter[op] += 1
        entries = self.storage.get(op)
        if entries is None:
            raise CheckpointError(
                f"{op.__name__} encountered during backward but not found in storage. {_MISMATCH}"
            )
        entry = entries.get(idx)
        if entry is None:
            raise CheckpointError(
                f"{op.__name__} invocation index {idx} encountered during backward but not "
                f"found in storage. {_MISMATCH}"
            )
        if entry is _CONSUMED:
            raise RuntimeError(
                "Trying to backward an extra time. You are only allowed to backward once on "
                "any region computed under selective activation checkpoint."
            )
        if entry is _RECOMPUTE:
            return
        saved, version = entry
        if version is None or not isinstance(out, Tensor):
            entries[idx] = _CONSUMED
            return
        if not self.allow_mutation and saved._version != version:
            raise RuntimeError(
                "Tensor cached during selective activation checkpoint has been mutated"
            )
        if (saved.shape, saved.dtype, saved.device) != (out.shape, out.dtype, out.device):
            raise CheckpointError(
                f"selective checkpoint: op {op.__name__} (call {idx}) gave an output of shape "
                f"{tuple(out.shape)}, {out.dtype} on {out.device} when recomputed, but "
                f"{tuple(saved.shape)}, {saved.dtype} on {saved.device} in the forward. "
                f"{_MISMATCH}"
            )
        entries[idx] = _CONSUMED


def create_selective_checkpoint_contexts(policy_fn_or_list, allow_cache_entry_mutation=False):
    """The ``context_fn`` pair for selective activation checkpointing.

    Args:
        policy_fn_or_list: ``policy(ctx, op, *args, **kwargs) -> CheckpointPolicy`` called
            for each op of the forward, or a list of ops (manygrad op classes) to save
            (``MUST_SAVE``; the others ``PREFER_RECOMPUTE``).
        allow_cache_entry_mutation: allow a saved output to be changed in place before
            backward (default False: an error).

    Returns the (forward, recompute) context managers.

    Example:
        >>> from manygrad.ops.linalg import Matmul
        >>> ctx_fn = functools.partial(create_selective_checkpoint_contexts, [Matmul])
        >>> y = checkpoint(fn, x, use_reentrant=False, context_fn=ctx_fn)
    """
    if isinstance(policy_fn_or_list, list):
        ops = policy_fn_or_list
        for op in ops:
            if not (isinstance(op, type) and issubclass(op, autograd.Function)):
                raise ValueError(
                    f"Expected op in `op_list` to be an OpOverload but got: {op} of type "
                    f"{type(op)}. In manygrad an op is its autograd.Function class, e.g. "
                    "manygrad.ops.linalg.Matmul or type(y.grad_fn)"
                )

        def policy_fn(ctx, op, *args, **kwargs):
            if op in ops:
                return CheckpointPolicy.MUST_SAVE
            return CheckpointPolicy.PREFER_RECOMPUTE

    elif callable(policy_fn_or_list):
        policy_fn = policy_fn_or_list
    else:
        raise TypeError("policy_fn_or_list must be either a function or a list of ops.")
    storage: defaultdict = defaultdict(dict)
    return _Caching(policy_fn, storage), _Cached(storage, allow_cache_entry_mutation)


class OpLog(OpWatch):
    """The names of the ops run inside it (checkpoint's debug mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __enter__(self):
        self.names = []
        return super().__enter__()

    def on_op(self, ctx, args, kwargs, out) -> None:
        self.names.append(type(ctx).__name__)


__all__ = [
    "SAC_IGNORED_OPS",
    "CheckpointError",
    "CheckpointPolicy",
    "OpLog",
    "OpWatch",
    "SelectiveCheckpointContext",
    "create_selective_checkpoint_contexts",
]

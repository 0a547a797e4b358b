"""DistributedDataParallel communication hooks (``torch.distributed.algorithms.ddp_comm_hooks``).

``default_hooks`` has PyTorch's ``allreduce_hook``, ``fp16_compress_hook``,
``bf16_compress_hook`` and the two compression wrappers; ``DDPCommHookType`` names them
for ``register_ddp_comm_hook``.

Example:
    >>> from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    >>> ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
"""

from __future__ import annotations

import enum
from functools import partial

from . import default_hooks
from . import default_hooks as default

__all__ = ["DDPCommHookType", "default_hooks", "register_ddp_comm_hook"]

# NOTE: enum.member (Python 3.11+) keeps a partial a member where later Pythons would
# treat it as a method
_member = getattr(enum, "member", lambda x: x)


def _register(model, state, comm_hook):
    model.register_comm_hook(state, comm_hook)


class DDPCommHookType(enum.Enum):
    """The built-in hooks by name: ``DDPCommHookType.FP16_COMPRESS.value(model=m, state=pg)``
    registers ``fp16_compress_hook`` on ``m``."""

    ALLREDUCE = _member(partial(_register, comm_hook=default.allreduce_hook))
    FP16_COMPRESS = _member(partial(_register, comm_hook=default.fp16_compress_hook))
    BF16_COMPRESS = _member(partial(_register, comm_hook=default.bf16_compress_hook))


def register_ddp_comm_hook(comm_hook_type: DDPCommHookType, model, state=None) -> None:
    """Register the hook named by ``comm_hook_type`` on the DDP ``model``, with ``state``
    (a process group, or None for the default group)."""
    if not isinstance(comm_hook_type, DDPCommHookType):
        raise TypeError(
            f"register_ddp_comm_hook: expected a DDPCommHookType, got {comm_hook_type!r}; "
            f"manygrad has {[t.name for t in DDPCommHookType]}"
        )
    comm_hook_type.value(model=model, state=state)

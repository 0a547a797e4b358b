"""``torch.overrides``: the ``__torch_function__`` protocol's queries. manygrad does not
dispatch to tensor subclasses, so nothing has a torch function to call."""

from __future__ import annotations

__all__ = ["handle_torch_function", "has_torch_function", "has_torch_function_unary",
           "has_torch_function_variadic", "is_tensor_like"]  # fmt: skip


def has_torch_function(relevant_args) -> bool:
    return False


def has_torch_function_unary(arg) -> bool:
    return False


def has_torch_function_variadic(*args) -> bool:
    return False


def is_tensor_like(inp) -> bool:
    from .tensor import Tensor

    return isinstance(inp, Tensor)


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    raise NotImplementedError(
        "handle_torch_function: manygrad has no __torch_function__ dispatch; call "
        f"{getattr(public_api, '__name__', public_api)} directly"
    )

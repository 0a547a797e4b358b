"""``nn.utils.parametrize``: a tensor of a module computed from other tensors on every access.

``register_parametrization(m, "weight", P())`` moves ``m.weight`` into
``m.parametrizations.weight.original`` and makes ``m.weight`` a property that returns
``P()(original)``; the module's class becomes ``Parametrized<Class>`` (PyTorch's names, so
state dicts interchange: ``parametrizations.weight.original``, or ``original0``,
``original1``... when ``right_inverse`` returns several tensors). Assigning ``m.weight = X``
stores ``right_inverse(X)`` in the originals. ``cached()`` computes each parametrized tensor
once inside its block.

Example:
    >>> class Symmetric(mg.nn.Module):
    ...     def forward(self, X):
    ...         return X.triu() + X.triu(1).mT
    >>> m = mg.nn.Linear(3, 3)
    >>> register_parametrization(m, "weight", Symmetric())
    >>> bool((m.weight == m.weight.T).all())
    True
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import contextmanager

from ...autograd import no_grad
from ...tensor import Tensor
from ..containers import ModuleDict, ModuleList
from ..module import Module
from ..parameter import Parameter

__all__ = [
    "ParametrizationList", "cached", "is_parametrized", "register_parametrization",
    "remove_parametrizations", "transfer_parametrizations_and_params",
    "type_before_parametrizations",
]  # fmt: skip

_cache_enabled = 0
_cache: dict = {}


@contextmanager
def cached():
    """Inside this block each parametrized tensor is computed once, on first access, and
    reused (e.g. a weight used at every step of a recurrent net)."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def _register(module: Module, name: str, value) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _replace_data(dest: Tensor, src: Tensor) -> None:
    """``dest`` takes ``src``'s values (and shape, dtype) in place: the same object, so that
    optimizers holding it keep working."""
    with no_grad():
        dest.data = src.detach()
        if dest._vc is not None:
            dest._vc[0] += 1


def _check_same(kind: str, got: Tensor, want: Tensor) -> None:
    if got.dtype != want.dtype:
        raise ValueError(
            f"{kind} may not change the dtype of the tensor, unless `unsafe` flag is enabled: "
            f"got {got.dtype}, the original has {want.dtype}"
        )
    if tuple(got.shape) != tuple(want.shape):
        raise ValueError(
            f"{kind} may not change the shape of the tensor, unless `unsafe` flag is enabled: "
            f"got {tuple(got.shape)}, the original has {tuple(want.shape)}"
        )


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to its original(s).

    ``original`` (or ``original0``, ``original1``, ... when the first ``right_inverse``
    returns a sequence) holds the unconstrained tensor(s); ``self()`` computes the
    parametrized one.
    """

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False):
        if len(modules) == 0:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new = original
            for module in reversed(self):
                if hasattr(module, "right_inverse"):
                    try:
                        new = module.right_inverse(new)
                    except NotImplementedError:
                        pass  # NOTE: then right_inverse is taken to be the identity
        if not isinstance(new, Tensor) and not isinstance(new, Sequence):
            raise ValueError(
                "'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...)."
                f" Got {type(new).__name__}"
            )
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if not unsafe:
                _check_same("When `right_inverse` outputs one tensor, it", new, original)
            _replace_data(original, new)
            _register(self, "original", original)
        else:
            for i, orig_i in enumerate(new):
                if not isinstance(orig_i, Tensor):
                    raise ValueError(
                        "'right_inverse' must return a Tensor or a Sequence of tensors "
                        f"(list, tuple...). Got element {i} of the sequence with type "
                        f"{type(orig_i).__name__}."
                    )
                if isinstance(original, Parameter):
                    orig_i = Parameter(orig_i.detach(), original.requires_grad)
                else:
                    orig_i = orig_i.detach()
                _register(self, f"original{i}", orig_i)
        if not unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != original_dtype or tuple(z.shape) != original_shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape or dtype of the "
                    f"tensor, unless `unsafe` flag is enabled: unparametrized "
                    f"{original_shape} {original_dtype}, parametrized {tuple(z.shape)} "
                    f"{z.dtype}"
                )

    def right_inverse(self, value: Tensor) -> None:
        """Store ``value`` as the parametrized tensor: the originals become what the
        parametrizations' ``right_inverse`` (applied last to first) give for it."""
        with no_grad():
            for module in reversed(self):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(
                        f"parametrization {type(module).__name__} does not implement "
                        "right_inverse; the tensor cannot be assigned"
                    )
                value = module.right_inverse(value)
            if self.is_tensor:
                if not isinstance(value, Tensor):
                    raise ValueError(f"`right_inverse` should return a tensor. Got {type(value)}")
                if not self.unsafe:
                    _check_same("The tensor returned by `right_inverse`", value, self.original)
                _replace_data(self.original, value)
            else:
                if not isinstance(value, Sequence) or len(value) != self.ntensors:
                    raise ValueError(
                        f"'right_inverse' must return a sequence of {self.ntensors} tensors, "
                        f"as when it was registered; got {type(value).__name__}"
                    )
                for i, tensor in enumerate(value):
                    original_i = getattr(self, f"original{i}")
                    if not isinstance(tensor, Tensor):
                        raise ValueError(
                            f"`right_inverse` must return a sequence of tensors. "
                            f"Got element {i} of type {type(tensor).__name__}"
                        )
                    if not self.unsafe:
                        _check_same(f"Tensor {i} returned by `right_inverse`", tensor, original_i)
                    _replace_data(original_i, tensor)

    def forward(self):
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _deepcopy(self, memo):
    replica = self.__new__(self.__class__)
    memo[id(self)] = replica
    replica.__dict__ = copy.deepcopy(self.__dict__, memo)
    return replica


def _getstate(self):
    raise RuntimeError(
        "Serialization of parametrized modules is only supported through state_dict(): "
        "save module.state_dict() and load it into a module parametrized the same way"
    )


def _inject_new_class(module: Module) -> None:
    """Give ``module`` a class of its own (``Parametrized<Class>``) to hold the properties."""
    cls = module.__class__
    module.__class__ = type(
        f"Parametrized{cls.__name__}",
        (cls,),
        {"__getstate__": _getstate, "__deepcopy__": _deepcopy, "_parametrized_class": True},
    )


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self):
        parametrization = self.parametrizations[tensor_name]
        if _cache_enabled:
            key = (id(self), tensor_name)
            tensor = _cache.get(key)
            if tensor is None:
                tensor = _cache[key] = parametrization()
            return tensor
        return parametrization()

    def set_original(self, value):
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:  # fmt: skip
    """Make ``module.<tensor_name>`` the output of ``parametrization`` applied to an
    unconstrained original (moved to ``module.parametrizations[tensor_name].original``).

    Args:
        module: the module holding the tensor.
        tensor_name: a parameter or buffer of ``module`` (or a new name, for a tensor made
            only of earlier parametrizations' originals).
        parametrization: a module whose ``forward`` maps the original(s) to the tensor; an
            optional ``right_inverse`` maps a tensor back to the original(s) (used at
            registration, so the tensor keeps its value, and on assignment).
        unsafe: skip the checks that the parametrization keeps shape and dtype.

    Example:
        >>> register_parametrization(linear, "weight", Symmetric())
    """
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(x)}.")
            _check_same("Registering a parametrization", x, y)
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    if not isinstance(z, Tensor):
                        raise ValueError(
                            f"parametrization.right_inverse must return a tensor. Got: {type(z)}"
                        )
                    _check_same("The tensor returned by parametrization.right_inverse", z, y)
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
    else:
        raise ValueError(
            f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
            f"with name '{tensor_name}'"
        )
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has a parametrization (on ``tensor_name``, when given)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str,
                            leave_parametrized: bool = True) -> Module:  # fmt: skip
    """Undo ``register_parametrization`` on ``tensor_name``.

    Args:
        module: the parametrized module.
        tensor_name: the parametrized tensor.
        leave_parametrized: keep the tensor's current (parametrized) value; False restores
            the original (only when there is one original).
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
            _replace_data(original, t)
    else:
        if not leave_parametrized:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                "parametrized in terms of a sequence of tensors."
            )
        with no_grad():
            t = getattr(module, tensor_name).detach()
        if isinstance(plist.original0, Parameter):
            original = Parameter(t, plist.original0.requires_grad)
        else:
            original = t
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = type_before_parametrizations(module)
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class before ``register_parametrization`` changed it."""
    cls = type(module)
    return cls.__bases__[0] if cls.__dict__.get("_parametrized_class") else cls


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:  # fmt: skip
    """Give ``to_module`` the parametrizations (and the originals' values) that
    ``from_module`` has on ``tensor_name`` (all of them when None)."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name).detach().clone()))
        for p in from_module.parametrizations[name]:
            if not is_parametrized(to_module, name) or not any(
                q is p for q in to_module.parametrizations[name]
            ):
                register_parametrization(to_module, name, p)
        src, dst = from_module.parametrizations[name], to_module.parametrizations[name]
        keys = ["original"] if src.is_tensor else [f"original{i}" for i in range(src.ntensors)]
        for key in keys:
            _replace_data(getattr(dst, key), getattr(src, key))
    return to_module

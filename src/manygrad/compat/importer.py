"""The ``torch`` import hook: ``import torch.nn as nn`` gives manygrad's modules.

``install()`` puts a finder first on ``sys.meta_path`` that answers every import of
``torch`` or ``torch.<sub>`` with a *proxy* module around the matching manygrad module
(``torch.utils.data`` -> ``manygrad.utils.data``). The proxy forwards attribute reads and
writes to the manygrad module; a name manygrad lacks raises ``UnsupportedAPIError``, which
names the PyTorch API (``torch.nn.Foo``) and the manygrad version, so that a ported script
stops on a clear line instead of a bare ``AttributeError`` about some manygrad module.
A ``torch.<sub>`` module with no manygrad counterpart raises ``UnsupportedModuleError``
(a ``ModuleNotFoundError``, so ``try: import torch.foo except ImportError`` still works).
``torchvision`` and ``torchvision.<sub>`` are answered the same way, by ``manygrad.vision``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types

from ..errors import ManygradError

PORTING = "docs/porting.md"

# torch module -> manygrad module, where the names differ (the rest map by prefix).
ALIASES = {
    "torch": "manygrad",
    "torch.amp": "manygrad.amp",
    "torch.autograd": "manygrad.compat.torch_autograd",
    "torch.autograd.functional": "manygrad.autograd.functional",
    "torch.autograd.graph": "manygrad.autograd.graph",
    "torch.autograd.function": "manygrad.compat.torch_autograd",
    "torch.autograd.anomaly_mode": "manygrad.compat.torch_autograd",
    "torch.autograd.profiler": "manygrad.profiler",
    "torch.autograd.forward_ad": "manygrad.autograd.forward_ad",
    "torch.autograd.gradcheck": "manygrad.autograd.gradcheck",
    "torch.autograd.grad_mode": "manygrad.compat.torch_autograd",
    "torch.autograd.variable": "manygrad.compat.torch_autograd",
    "torch.utils.checkpoint": "manygrad.utils.checkpoint",
    "torch.nn.parallel": "manygrad.nn.parallel",
    "torch.onnx": "manygrad.onnx",
    "torch.version": "manygrad.compat.torch_version",
    "torch.testing": "manygrad.compat.torch_testing",
    "torch.multiprocessing": "manygrad.compat.torch_multiprocessing",
    "torch.types": "manygrad.compat.torch_types",
    "torch.ops": "manygrad.compat.torch_ops",
    "torch.quantization": "manygrad.ao.quantization",
    "torch.nn.quantized": "manygrad.ao.nn.quantized",
    "torch.nn.intrinsic": "manygrad.ao.nn.intrinsic",
    "torch.nn.qat": "manygrad.ao.nn.qat",
    "torch._dynamo": "manygrad.compat.torch_dynamo",
    "torch._dynamo.config": "manygrad.compat.torch_dynamo_config",
    "torch._inductor": "manygrad.compat.torch_inductor",
    "torch._inductor.config": "manygrad.compat.torch_inductor_config",
    "torch.amp.grad_scaler": "manygrad.compat.torch_amp_modules",
    "torch.amp.autocast_mode": "manygrad.compat.torch_amp_modules",
    "torch.export.dynamic_shapes": "manygrad.compat.torch_export_dynamic_shapes",
}


# torch modules that hold one class each, served by the manygrad package that has them all
# (``from torch.distributions.gamma import Gamma``); not used to name manygrad modules back
_ONE_CLASS_MODULES = {
    f"torch.distributions.{m}": "manygrad.distributions"
    for m in (
        "beta binomial cauchy chi2 continuous_bernoulli dirichlet exp_family fishersnedecor "
        "gamma generalized_pareto geometric gumbel half_cauchy half_normal inverse_gamma "
        "kumaraswamy lkj_cholesky log_normal logistic_normal lowrank_multivariate_normal "
        "mixture_same_family multinomial negative_binomial pareto poisson relaxed_bernoulli "
        "relaxed_categorical studentT von_mises weibull wishart"
    ).split()
}


def _version() -> str:
    from .. import __version__

    return __version__


class UnsupportedAPIError(ManygradError, AttributeError):
    """A PyTorch name that manygrad does not provide (yet)."""


class UnsupportedModuleError(ManygradError, ModuleNotFoundError):
    """A PyTorch module that manygrad does not provide (yet)."""


def unsupported_message(torch_name: str) -> str:
    return (
        f"{torch_name} is not supported by manygrad {_version()}; see {PORTING} for what is "
        "supported and how to port around it"
    )


def _is_vision(name: str) -> bool:
    return name == "torchvision" or name.startswith("torchvision.")


def _served(name: str) -> bool:
    """Whether the finder answers an import of ``name`` (torch and torchvision)."""
    return name == "torch" or name.startswith("torch.") or _is_vision(name)


def target_name(torch_name: str) -> str:
    """The manygrad module that stands for the torch module ``torch_name``."""
    if _is_vision(torch_name):  # NOTE: torchvision.x -> manygrad.vision.x
        return "manygrad.vision" + torch_name[len("torchvision") :]
    if torch_name in ALIASES:
        return ALIASES[torch_name]
    if torch_name in _ONE_CLASS_MODULES:
        try:
            importlib.import_module("manygrad" + torch_name[len("torch") :])
            return "manygrad" + torch_name[len("torch") :]
        except ModuleNotFoundError:
            return _ONE_CLASS_MODULES[torch_name]
    parts = torch_name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in ALIASES:
            return ALIASES[head] + "." + ".".join(parts[i:])
    return "manygrad" + torch_name[len("torch") :]


def torch_name_of(module_name: str) -> str:
    """The torch name a manygrad module is shown under (inverse of ``target_name``)."""
    if module_name == "manygrad.vision" or module_name.startswith("manygrad.vision."):
        return "torchvision" + module_name[len("manygrad.vision") :]
    for t, m in ALIASES.items():
        if m == module_name:
            return t
    return "torch" + module_name[len("manygrad") :]


_PROXIES: dict[str, TorchModule] = {}


class TorchModule(types.ModuleType):
    """A module object named ``torch...`` whose attributes are the manygrad module's."""

    def __init__(self, torch_name: str, target: types.ModuleType):
        super().__init__(torch_name, getattr(target, "__doc__", None))
        object.__setattr__(self, "_mg_target", target)
        object.__setattr__(self, "__file__", getattr(target, "__file__", None))
        # NOTE: every proxy is a package (submodules are found by the finder, by name), as
        # torch.cuda and friends are packages in PyTorch even where manygrad has one file
        object.__setattr__(self, "__path__", [])

    def __getattr__(self, name: str):
        target = object.__getattribute__(self, "_mg_target")
        torch_name = object.__getattribute__(self, "__name__")
        full = f"{torch_name}.{name}"
        if full in ALIASES:  # a submodule that lives elsewhere in manygrad
            # NOTE: as in PyTorch, a package's function shadows its submodule of the same
            # name: torch.autograd.gradcheck is the function, while `from
            # torch.autograd.gradcheck import gradcheck` still imports from the module
            shadow = getattr(target, name, None)
            if shadow is not None and not isinstance(shadow, types.ModuleType):
                return shadow
            try:
                return proxy(full, importlib.import_module(ALIASES[full]))
            except ModuleNotFoundError as e:
                if e.name is None or not ALIASES[full].startswith(e.name):
                    raise
                raise UnsupportedAPIError(unsupported_message(full)) from None
        if name == "__version__" and torch_name == "torch":
            from .torch_version import __version__ as version  # PyTorch's API level

            return version
        try:
            value = getattr(target, name)
        except AttributeError:
            if getattr(type(target), "exact_names", False):
                raise  # NOTE: a config module: PyTorch's own error for a name it lacks too
            if name == "__all__":  # `from torch import *`: the public names
                return [n for n in dir(target) if not n.startswith("_")]
            if name.startswith("__"):
                raise
            value = None
            try:
                value = importlib.import_module(f"{target.__name__}.{name}")
            except ModuleNotFoundError as e:
                if e.name is None or not f"{target.__name__}.{name}".startswith(e.name):
                    raise
            if value is None:
                raise UnsupportedAPIError(unsupported_message(full)) from None
        if isinstance(value, types.ModuleType) and value.__name__.startswith("manygrad"):
            return proxy(full, value)
        return value

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, TorchModule):
            return  # the import system binding a submodule: reads make the proxy anyway
        if name.startswith("__") and name.endswith("__"):
            object.__setattr__(self, name, value)
        else:
            setattr(object.__getattribute__(self, "_mg_target"), name, value)

    def __dir__(self):
        return sorted(set(dir(object.__getattribute__(self, "_mg_target"))))

    def __repr__(self) -> str:
        target = object.__getattribute__(self, "_mg_target")
        return f"<module {self.__name__!r} (manygrad: {target.__name__!r})>"


def proxy(torch_name: str, target: types.ModuleType) -> TorchModule:
    """The one proxy module for ``torch_name`` (made on first use)."""
    p = _PROXIES.get(torch_name)
    if p is None or object.__getattribute__(p, "_mg_target") is not target:
        p = _PROXIES[torch_name] = TorchModule(torch_name, target)
    return p


class _Loader(importlib.abc.Loader):
    def __init__(self, target: types.ModuleType):
        self.target = target

    def create_module(self, spec):
        return proxy(spec.name, self.target)

    def exec_module(self, module) -> None:
        pass


class TorchFinder(importlib.abc.MetaPathFinder):
    """Answers ``import torch[.x.y]`` (and ``import torchvision[.x]``) with manygrad's
    modules (see the module docstring)."""

    def find_spec(self, fullname, path=None, target=None):
        if not _served(fullname):
            return None
        name = target_name(fullname)
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and name.startswith(e.name):
                raise UnsupportedModuleError(unsupported_message(fullname), name=fullname) from None
            raise
        spec = importlib.machinery.ModuleSpec(fullname, _Loader(mod))
        spec.submodule_search_locations = []
        return spec


_FINDER = TorchFinder()
_STASHED: dict[str, types.ModuleType] = {}


def install() -> None:
    """Make ``import torch`` (and every ``torch.*``) resolve to manygrad in this process.

    Modules of a real PyTorch that were already imported leave ``sys.modules`` until
    ``uninstall()`` puts them back.

    Example:
        >>> import manygrad.compat
        >>> manygrad.compat.install()
        >>> import torch.nn as nn  # manygrad.nn
    """
    for k in [k for k in sys.modules if _served(k)]:
        if not isinstance(sys.modules[k], TorchModule):
            _STASHED[k] = sys.modules.pop(k)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    from .. import dtypes

    dtypes.display_module = "torch"  # NOTE: dtypes and sizes print as PyTorch's


def uninstall() -> None:
    """Undo ``install``: ``import torch`` finds the real PyTorch (if installed) again."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    from .. import dtypes

    dtypes.display_module = "manygrad"
    for k in [k for k in sys.modules if _served(k)]:
        if isinstance(sys.modules[k], TorchModule):
            del sys.modules[k]
    sys.modules.update(_STASHED)  # a real PyTorch imported before install() comes back
    _STASHED.clear()

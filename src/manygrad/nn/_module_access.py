"""Module lookups by dotted path (``get_submodule``, ``get_parameter``, ``get_buffer``,
``set_submodule``) and PyTorch's whole-module switches that manygrad needs no work for
(``compile``, ``to_empty``), mixed into ``Module``."""

from __future__ import annotations


class ModuleAccess:
    """Mixed into ``Module``."""

    def get_submodule(self, target: str):
        """The submodule at dotted path ``target`` ("" is the module itself)."""
        from .module import Module

        mod = self
        for item in target.split(".") if target else []:
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def get_parameter(self, target: str):
        """The parameter at dotted path ``target`` (e.g. ``"encoder.0.weight"``)."""
        from .parameter import Parameter

        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        param = getattr(mod, name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str):
        """The buffer at dotted path ``target`` (e.g. ``"bn.running_mean"``)."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if not hasattr(mod, name):
            raise AttributeError(mod._get_name() + " has no attribute `" + name + "`")
        buffer = getattr(mod, name)
        if name not in mod._buffers:
            raise AttributeError("`" + name + "` is not a buffer")
        return buffer

    def set_submodule(self, target: str, module, strict: bool = False) -> None:
        """Put ``module`` at dotted path ``target`` (its parent must exist; with ``strict``
        the name must already hold a submodule)."""
        from .module import Module

        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        if not isinstance(module, Module):
            raise ValueError(f"`module` is not an nn.Module, found {type(module)}")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and not hasattr(parent, name):
            raise AttributeError(parent._get_name() + " has no attribute `" + name + "`")
        if hasattr(parent, name) and not isinstance(getattr(parent, name), Module):
            raise AttributeError("`" + name + "` is not an nn.Module")
        setattr(parent, name, module)

    def compile(self, *args, **kwargs) -> None:
        """PyTorch compiles the module's forward in place; manygrad runs it as it is (its
        speed comes from fused kernels and CUDA graphs, see docs/performance.md)."""
        return None

    def to_empty(self, *, device=None, recurse: bool = True):
        """Move parameters and buffers (of submodules too, with ``recurse``) to ``device``
        (new, uninitialised storage, as PyTorch's: for a model built on ``meta``, before
        ``load_state_dict`` or an initialiser fills it)."""
        from .. import backend
        from .module import _on_arrays

        if device is None:
            return self
        dev = backend.check_device(backend.device(device))
        return self._apply(
            _on_arrays(lambda a: backend.empty_on(dev, a.shape, a.dtype)), recurse=recurse
        )

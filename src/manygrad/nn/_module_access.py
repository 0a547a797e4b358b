"""Module lookups by dotted path (``get_submodule``, ``get_parameter``, ``get_buffer``,
``set_submodule``) and PyTorch's whole-module switches that manygrad needs no work for
(``compile``, ``to_empty``), mixed into ``Module``."""

from __future__ import annotations


class ModuleAccess:
    """Mixed into ``Module``."""

    def get_submodule(self, target: str):
        """The submodule at dotted path ``target`` ("" is the module itself)."""
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules:
                raise AttributeError(f"{mod._get_name()} has no submodule `{item}`")
            mod = mod._modules[item]
        return mod

    def _member(self, target: str, store: str, kind: str):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        members = getattr(mod, store)
        if name not in members:
            raise AttributeError(f"{mod._get_name()} has no {kind} `{name}`")
        return members[name]

    def get_parameter(self, target: str):
        """The parameter at dotted path ``target`` (e.g. ``"encoder.0.weight"``)."""
        return self._member(target, "_parameters", "parameter")

    def get_buffer(self, target: str):
        """The buffer at dotted path ``target`` (e.g. ``"bn.running_mean"``)."""
        return self._member(target, "_buffers", "buffer")

    def set_submodule(self, target: str, module, strict: bool = False) -> None:
        """Put ``module`` at dotted path ``target`` (its parent must exist; with ``strict``
        the name must already hold a submodule)."""
        if not target:
            raise ValueError("set_submodule: cannot set the module itself (target '')")
        parent_path, _, name = target.rpartition(".")
        parent = self.get_submodule(parent_path)
        if strict and name not in parent._modules:
            raise AttributeError(f"{parent._get_name()} has no submodule `{name}`")
        from .module import Module

        if not isinstance(module, Module):
            raise TypeError(f"`module` is not an nn.Module, found {type(module).__name__}")
        setattr(parent, name, module)

    def compile(self, *args, **kwargs) -> None:
        """PyTorch compiles the module's forward in place; manygrad runs it as it is (its
        speed comes from fused kernels and CUDA graphs, see docs/performance.md)."""
        return None

    def to_empty(self, *, device=None, recurse: bool = True):
        """Move parameters and buffers to ``device`` (values are kept: PyTorch leaves them
        uninitialized, any values are allowed)."""
        return self.to(device) if device is not None else self

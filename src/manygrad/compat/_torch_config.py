"""The config modules of ``torch._dynamo.config`` and ``torch._inductor.config``.

manygrad runs eagerly, so no setting changes what a program computes; a ported program sets
them all the same (``torch._dynamo.config.suppress_errors = True``). A config module holds
PyTorch's settings under PyTorch's names with PyTorch's defaults: assigning a known one is
recorded, and reading or assigning an unknown one raises ``AttributeError`` naming it, as
PyTorch's config modules do (a typo in a setting stays an error). ``patch`` sets some for a
block or a function.

Example:
    >>> import torch._dynamo
    >>> torch._dynamo.config.cache_size_limit = 64
    >>> with torch._dynamo.config.patch(suppress_errors=True): ...
"""

from __future__ import annotations

import contextlib
import copy
import pickle
import sys
import types
from typing import Any


class _Settings:
    """The settings of one config module, with sub-configs (``triton.cudagraphs``) by their
    dotted names and aliases (``cache_size_limit`` for ``recompile_limit``)."""

    def __init__(self, prefix: str, defaults: dict, aliases: dict) -> None:
        self.prefix, self.defaults, self.aliases = prefix, defaults, aliases
        self.values = copy.deepcopy(defaults)

    def key(self, name: str) -> str:
        name = self.aliases.get(name, name)
        if name not in self.values:
            raise AttributeError(f"{self.prefix}.{name} does not exist")
        return name


class _SubConfig:
    """``config.triton`` and friends: the settings whose names start with ``triton.``."""

    def __init__(self, settings: _Settings, group: str) -> None:
        object.__setattr__(self, "_settings", settings)
        object.__setattr__(self, "_group", group)

    def __getattr__(self, name: str) -> Any:
        s, g = object.__getattribute__(self, "_settings"), object.__getattribute__(self, "_group")
        full = f"{g}.{name}"
        if full not in s.values:
            raise AttributeError(f"{s.prefix}.{full} does not exist")
        return s.values[full]

    def __setattr__(self, name: str, value: Any) -> None:
        s, g = object.__getattribute__(self, "_settings"), object.__getattribute__(self, "_group")
        s.values[s.key(f"{g}.{name}")] = value

    def __dir__(self):
        g = object.__getattribute__(self, "_group") + "."
        keys = object.__getattribute__(self, "_settings").values
        return sorted(k[len(g) :] for k in keys if k.startswith(g))


class ConfigModule(types.ModuleType):
    """A module whose attributes are validated settings (see the module docstring)."""

    exact_names = True  # NOTE: the torch import hook passes its AttributeError on unchanged

    def __getattr__(self, name: str) -> Any:
        s: _Settings = self.__dict__["_settings"]
        if name.startswith("__"):
            raise AttributeError(name)
        key = s.aliases.get(name, name)
        if key in s.values:
            return s.values[key]
        if any(k.startswith(key + ".") for k in s.values):
            return _SubConfig(s, key)
        raise AttributeError(f"{s.prefix}.{name} does not exist")

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("__") or name in self.__dict__:
            super().__setattr__(name, value)
            return
        s: _Settings = self.__dict__["_settings"]
        s.values[s.key(name)] = value

    def __delattr__(self, name: str) -> None:
        s: _Settings = self.__dict__["_settings"]
        key = s.key(name)
        s.values[key] = copy.deepcopy(s.defaults[key])  # NOTE: PyTorch resets to the default

    def __dir__(self):
        s: _Settings = self.__dict__["_settings"]
        top = {k.split(".")[0] for k in s.values}
        return sorted(top | set(s.aliases) | set(self.__dict__))

    # ---------------------------------------------------------------- PyTorch's methods
    def get_config_copy(self) -> dict[str, Any]:
        """A copy of every setting, by its dotted name."""
        return copy.deepcopy(self.__dict__["_settings"].values)

    def to_dict(self) -> dict[str, Any]:
        return self.get_config_copy()

    def shallow_copy_dict(self) -> dict[str, Any]:
        return dict(self.__dict__["_settings"].values)

    def save_config(self) -> bytes:
        """The settings as bytes that ``load_config`` reads back."""
        return pickle.dumps(self.get_config_copy(), protocol=2)

    def load_config(self, maybe_pickled_config: bytes | dict) -> None:
        """Set the settings saved by ``save_config`` (or given as a dict)."""
        cfg = maybe_pickled_config
        if not isinstance(cfg, dict):
            cfg = pickle.loads(cfg)
        s: _Settings = self.__dict__["_settings"]
        for k, v in cfg.items():
            if k in s.values:
                s.values[k] = v

    def patch(self, arg1: str | dict | None = None, arg2: Any = None, **changes: Any):
        """Set settings for a ``with`` block or a decorated function, then restore them:
        ``config.patch(suppress_errors=True)``, ``config.patch("triton.cudagraphs", True)``
        or ``config.patch({"verbose": True})``."""
        if isinstance(arg1, str):
            changes = {arg1: arg2, **changes}
        elif isinstance(arg1, dict):
            changes = {**arg1, **changes}
        elif arg1 is not None:
            raise TypeError(f"config.patch: expected a setting name or a dict, got {arg1!r}")
        s: _Settings = self.__dict__["_settings"]
        keys = {s.key(k): v for k, v in changes.items()}  # unknown names fail here, early
        return _Patch(s, keys)


class _Patch(contextlib.ContextDecorator):
    def __init__(self, settings: _Settings, changes: dict) -> None:
        self.settings, self.changes, self.saved = settings, changes, []

    def __enter__(self):
        vals = self.settings.values
        self.saved.append({k: vals[k] for k in self.changes})
        vals.update(self.changes)
        return self

    def __exit__(self, *exc) -> bool:
        self.settings.values.update(self.saved.pop())
        return False


def install(module_name: str, torch_name: str, defaults: dict, aliases: dict) -> None:
    """Turn the module ``module_name`` into a config module holding ``defaults`` (dotted
    names for sub-configs) under ``torch_name`` in its messages."""
    mod = sys.modules[module_name]
    mod.__dict__["_settings"] = _Settings(torch_name, defaults, aliases)
    for k in list(defaults) + [k.split(".")[0] for k in defaults]:
        mod.__dict__.pop(k, None)  # NOTE: reads must reach __getattr__
    mod.__class__ = ConfigModule

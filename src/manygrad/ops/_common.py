"""Helpers shared by the op modules."""


def public(ns: dict) -> list[str]:
    """``__all__`` of an op module: the functions it defines (not classes or imports)."""
    name = ns["__name__"]
    return sorted(
        k
        for k, v in ns.items()
        if not k.startswith("_")
        and callable(v)
        and not isinstance(v, type)
        and getattr(v, "__module__", None) == name
    )

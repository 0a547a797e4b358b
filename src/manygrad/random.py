"""``manygrad.random``: PyTorch's ``torch.random`` (seeding and the RNG state)."""

from contextlib import contextmanager

from .ops.random import (
    Generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)

__all__ = [
    "Generator",
    "fork_rng",
    "get_rng_state",
    "initial_seed",
    "manual_seed",
    "seed",
    "set_rng_state",
]


@contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str = "cuda"):  # fmt: skip
    """Run a block with the random generators' states restored when it ends: draws inside
    it do not change what later code draws (the CPU's generator and every device's).

    Args:
        devices: the GPUs whose generators to fork (default: all that have one).
        enabled: False makes this a plain block.

    Example:
        >>> with mg.random.fork_rng():
        ...     noise = mg.randn(3)  # the draws after the block are as if it never ran
    """
    from . import backend

    if not enabled:
        yield
        return
    gens = [g for d, g in list(backend._generators.items())
            if devices is None or d.type == "cpu" or d.index in set(devices)]  # fmt: skip
    cpu = backend.generator(backend.CPU)
    if cpu not in gens:
        gens.append(cpu)
    saved = [(g, g.get_state()) for g in gens]
    try:
        yield
    finally:
        for g, st in saved:
            g.set_state(st)

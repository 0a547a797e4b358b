"""``torch.cuda.random``: the GPU generators' seeds and states, the same functions as
``mg.cuda.manual_seed``, ``mg.cuda.get_rng_state`` and friends.

Example:
    >>> from manygrad.cuda.random import get_rng_state, set_rng_state
"""

from __future__ import annotations

from . import (
    get_rng_state,
    get_rng_state_all,
    initial_seed,
    manual_seed,
    manual_seed_all,
    seed,
    seed_all,
    set_rng_state,
    set_rng_state_all,
)

__all__ = [
    "get_rng_state", "get_rng_state_all", "set_rng_state", "set_rng_state_all", "manual_seed",
    "manual_seed_all", "seed", "seed_all", "initial_seed",
]  # fmt: skip

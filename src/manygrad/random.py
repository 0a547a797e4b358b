"""``manygrad.random``: PyTorch's ``torch.random`` (seeding and the RNG state)."""

from .creation import manual_seed
from .ops.random import Generator, get_rng_state, initial_seed, seed, set_rng_state

__all__ = ["Generator", "get_rng_state", "initial_seed", "manual_seed", "seed", "set_rng_state"]

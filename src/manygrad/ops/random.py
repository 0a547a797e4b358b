"""Random sampling with PyTorch's names: ``Generator``, bernoulli, multinomial, normal,
poisson, and the global RNG state functions."""

from __future__ import annotations

import os

from .. import _rng_state, backend
from .. import dtypes as D
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import add, mul
from .scatter import _broadcast_shape


class Generator(backend.Generator):
    """A random stream of one device, passed to random functions as ``generator=``.

    Example: ``g = mg.Generator().manual_seed(42); mg.rand(3, generator=g)``
    """

    def __init__(self, device="cpu"):
        super().__init__(backend.device(device), None)

    # NOTE: the base class stores the seed as the attribute ``initial_seed``; PyTorch has a
    # method of that name, so the attribute lives behind a property returning a callable
    @property
    def initial_seed(self):
        return lambda: self._initial

    @initial_seed.setter
    def initial_seed(self, value):
        self._initial = value

    def manual_seed(self, seed: int) -> Generator:
        """Reseed with ``seed``; returns the generator (as PyTorch's does)."""
        backend.Generator.seed(self, _rng_state.check_seed(seed, "Generator.manual_seed", True))
        return self

    def seed(self, seed: int | None = None) -> int:  # type: ignore[override]
        """Reseed from the operating system's entropy (or with ``seed``); returns the seed."""
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") >> 1
        seed = _rng_state.check_seed(seed, "Generator.seed", True)
        backend.Generator.seed(self, seed)
        return seed

    def get_state(self) -> Tensor:  # type: ignore[override]
        """The stream's position as a 1-d uint8 CPU tensor (``set_state`` returns to it).

        Example: ``st = g.get_state(); a = mg.rand(3, generator=g); g.set_state(st)``
        """
        return _rng_state.get(self)

    def set_state(self, new_state) -> Generator:  # type: ignore[override]
        """Continue from ``new_state`` (what ``get_state`` returned; a state dict of an
        older manygrad is accepted too); returns the generator."""
        _rng_state.load(self, new_state, "Generator.set_state")
        return self

    def clone_state(self) -> Generator:
        """A new generator of the same device at the same stream position."""
        return Generator(self.device).set_state(self.get_state())

    def __int__(self) -> int:
        """A seed drawn from this stream (for code that takes an int seed, such as the
        data samplers); advances the stream."""
        return int(backend.to_numpy(self.integers(0, 2**62, (), "int64")))

    def __repr__(self) -> str:
        return f"<manygrad.Generator device={self.device}>"


def _default_generator() -> Generator:
    """The CPU's global stream as a ``Generator`` (PyTorch's ``default_generator``): the
    object ``mg.manual_seed`` reseeds and ``rand`` draws from."""
    old = backend._generators.get(backend.CPU)
    g = Generator("cpu")
    if old is not None:
        g._g, g._initial = old._g, old.initial_seed
    elif backend._base_seed is not None:
        backend.Generator.seed(g, backend._base_seed)
    backend._generators[backend.CPU] = g
    return g


default_generator = _default_generator()


def _gen(x: Tensor, generator):
    return generator if generator is not None else backend.generator(x._device)


def _on(x: Tensor, a):
    dev = backend.device_of(a)
    return a if dev == x._device else backend.to_device(a, x._device)


def _uniform(x: Tensor, generator, shape=None, dtype=None):
    g = _gen(x, generator)
    dt = dtype or (x._data.dtype if x.is_floating_point() else D.get_default_dtype().np)
    return _on(x, g.random(tuple(x.shape) if shape is None else shape, dt))


@backend.on_tensor_device
def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """0/1 samples, 1 with probability ``input`` (or ``p``); same shape and dtype."""
    probs = input._data if p is None else p
    u = _uniform(input, generator)
    out = (u < probs).astype(input._data.dtype if input.is_floating_point() else u.dtype)
    return Tensor._wrap(out, input._device)


@backend.on_tensor_device
def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator=None) -> Tensor:  # fmt: skip
    """Category indices drawn with probabilities proportional to the rows of ``input``
    (1-d or 2-d, non-negative weights); without ``replacement`` no index repeats.

    Example: ``mg.multinomial(mg.tensor([0.2, 0.8]), 4, replacement=True)``
    """
    if input.ndim not in (1, 2):
        raise ShapeError(
            f"multinomial: expected 1-d or 2-d weights, got shape {tuple(input.shape)}"
        )
    w = input._data if input.ndim == 2 else input._data[None, :]
    xp = backend.array_module(w)
    n = w.shape[-1]
    if not replacement and num_samples > n:
        raise ValueError(
            f"multinomial: cannot draw {num_samples} samples from {n} categories without "
            "replacement; pass replacement=True or draw fewer"
        )
    if backend.device_of(w).type == "cpu":
        # NOTE: PyTorch's CPU checks (NaN probabilities of a diverged model would otherwise
        # draw index 0 silently); on a GPU they would cost a host sync, so they are skipped
        if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
            raise RuntimeError(
                "multinomial: the probabilities contain inf, NaN or a negative number; "
                "check the logits they came from (softmax of finite values is valid)"
            )
        if bool((w.sum(-1) <= 0).any()):
            raise RuntimeError(
                "multinomial: a row of probabilities sums to 0; give each row a positive weight"
            )
    w = w.astype("float64")
    if replacement:
        cdf = xp.cumsum(w, -1)
        cdf = cdf / cdf[:, -1:]
        u = _uniform(input, generator, (w.shape[0], num_samples), "float64")
        idx = (cdf[:, None, :] <= u[:, :, None]).sum(-1)
        idx = xp.minimum(idx, n - 1)
    else:
        # NOTE: the exponential race: the k smallest of E_i / w_i are a weighted draw
        # without replacement; zero weights never win
        u = _uniform(input, generator, w.shape, "float64")
        with backend.quiet_float_errors():
            keys = xp.where(w > 0, -xp.log1p(-u) / w, xp.inf)
        idx = xp.argsort(keys, -1, kind="stable")[:, :num_samples]
    idx = idx.astype("int64")
    return Tensor._wrap(idx if input.ndim == 2 else idx[0], input._device)


def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:  # fmt: skip
    """Normal samples with the given ``mean`` and ``std`` (tensors or numbers; with numbers
    give ``size``). Differentiable in tensor means and stds (``mean + std * eps``)."""
    from ..creation import randn

    ref = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    if ref is None:
        if size is None:
            raise TypeError("normal: with a number mean and std, give size=")
        eps = randn(*tuple(size), generator=generator, dtype=dtype, device=device)
        out = eps * std + mean
        return out.requires_grad_() if requires_grad else out
    shape = tuple(ref.shape)
    if isinstance(mean, Tensor) and isinstance(std, Tensor):
        shape = _broadcast_shape(tuple(mean.shape), tuple(std.shape), "normal")
    g = _gen(ref, generator)
    with backend.device_scope(ref._device):
        dt = ref._data.dtype if ref.is_floating_point() else D.get_default_dtype().np
        eps = Tensor._wrap(_on(ref, g.normal(shape, dt)), ref._device)
    return add(mul(eps, std), mean)


@backend.on_tensor_device
def poisson(input: Tensor, generator=None) -> Tensor:  # noqa: A002
    """Poisson counts with rates ``input``, as floats of its dtype."""
    g = _gen(input, generator)
    lam = input._data if g.device == input._device else backend.to_device(input._data, g.device)
    return Tensor._wrap(_on(input, g.poisson(lam)), input._device)


def get_rng_state() -> Tensor:
    """The CPU generator's state as a 1-d uint8 tensor (``set_rng_state`` restores it).

    Example: ``st = mg.get_rng_state(); a = mg.rand(3); mg.set_rng_state(st)`` (then
    ``mg.rand(3)`` equals ``a``)
    """
    return _rng_state.get(backend.generator(backend.CPU))


def set_rng_state(new_state) -> None:
    """Continue the CPU generator from ``new_state``, what ``get_rng_state`` returned (a
    state dict of an older manygrad is accepted too)."""
    _rng_state.load(backend.generator(backend.CPU), new_state, "set_rng_state")


def seed() -> int:
    """Seed every device's generator from the operating system's entropy; returns it."""
    s = int.from_bytes(os.urandom(8), "little") >> 1
    backend.manual_seed(s)
    return s


def manual_seed(seed: int) -> Generator:
    """Seed every device's generator (CPU and GPUs); returns the CPU's, ``default_generator``
    (as PyTorch does). Seeds are ints in [-2**63, 2**64); negatives wrap as PyTorch's do."""
    backend.manual_seed(_rng_state.check_seed(seed, "manual_seed"))
    return backend.generator(backend.CPU)


def initial_seed() -> int:
    """The seed of the CPU generator (0 if it was never seeded)."""
    s = _rng_state.seed_of(backend.generator(backend.CPU))
    return 0 if s is None else int(s)


from ._common import public  # noqa: E402

__all__ = public(globals()) + ["Generator", "default_generator"]

"""Run a PyTorch program so that PyTorch and manygrad see the same numbers.

Usage (the port tests do this):
    python tests/ports/_sync.py SCRIPT ARGS...                  # real PyTorch
    manygrad run tests/ports/_sync.py SCRIPT ARGS...             # manygrad as torch

This file is itself a plain PyTorch program: under ``manygrad run`` its ``import torch`` is
manygrad. Before running SCRIPT (unchanged) it makes the two frameworks agree where they
would otherwise differ only by their random streams:
- every parameter gets the same initial values (a NumPy stream keyed by the parameter's
  order and shape) when it is handed to an optimizer or its model is first called, except
  deep copies of parameters already synced, which keep the values they copied, parameters
  loaded from a state dict, which keep the values they loaded, constant zeros and ones, and
  0-d parameters (a temperature or scale the program set to a constant);
- ``torch.rand``/``randn``/``*_like``/``randint``/``randperm``/``multinomial``,
  ``Categorical.sample`` and ``Normal.sample``/``rsample`` draw from one shared NumPy stream
  (a ``generator=`` is ignored);
- ``random_split`` and ``WeightedRandomSampler`` draw from that stream too, DataLoaders do
  not shuffle, and dropout layers drop nothing.
Everything else (layers, losses, autograd, optimizers) is the framework's own.
"""

import math
import runpy
import sys
import weakref

import numpy as np
import torch
import torch.distributions
import torch.nn
import torch.optim
import torch.utils.data

_RNG = np.random.default_rng(1234)
_count = [0]

if hasattr(torch, "_C"):  # NOTE: the real PyTorch: let PyPI's (CUDA) torchvision import
    import torch.library

    _register_fake = torch.library.register_fake

    def _register_fake_unless_torchvision(op, *args, **kwargs):
        # NOTE: torchvision's compiled ops need CUDA's libraries; without them its import
        # fails where it registers their fake kernels. Its Python parts (transforms,
        # datasets, models, the box ops) need none of that.
        if isinstance(op, str) and op.startswith("torchvision::"):
            return lambda fn: fn
        return _register_fake(op, *args, **kwargs)

    torch.library.register_fake = _register_fake_unless_torchvision


def _init_value(shape, index):
    rng = np.random.default_rng(10_000 + index)
    fan_in = int(np.prod(shape[1:])) if len(shape) >= 2 else int(shape[0]) if shape else 1
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


# NOTE: id -> weak reference: a freed parameter's id can be reused by a new one
_synced = {}


def _sync_params(params):
    params = list(params)
    # NOTE: a group's "params" may be a generator (`{"params": model.parameters()}`): it is
    # listed once here and the listed copy goes on to the optimizer
    params = [_listed_group(p) if isinstance(p, dict) else p for p in params]
    tensors = []
    for p in params:
        tensors.extend(p["params"] if isinstance(p, dict) else [p])
    with torch.no_grad():
        for p in tensors:
            seen = _synced.get(id(p))
            if seen is not None and seen() is p:
                continue
            if isinstance(p, torch.nn.parameter.UninitializedParameter):
                continue  # NOTE: a lazy layer's, synced once its first call gives it a shape
            _synced[id(p)] = weakref.ref(p)
            i = _count[0]
            _count[0] += 1
            values = p.detach().numpy()
            if (
                values.size
                and np.isin(values, (0.0, 1.0)).all()
                and (values == values.flat[0]).all()
            ):
                continue  # norm weights (ones) and zero biases stay as the framework made them
            if values.ndim == 0:
                continue  # a learnt scalar (CLIP's logit scale) starts where the program put it
            p.copy_(torch.from_numpy(_init_value(tuple(p.shape), i)))
    return params


def _listed_group(group: dict) -> dict:
    ps = group["params"]
    return dict(group, params=[ps] if isinstance(ps, torch.Tensor) else list(ps))


_param_deepcopy = torch.nn.Parameter.__deepcopy__


def _patched_param_deepcopy(self, memo):
    # a copy of a synced parameter (an EMA model, say) keeps the values it copied
    new = _param_deepcopy(self, memo)
    seen = _synced.get(id(self))
    if seen is not None and seen() is self:
        _synced[id(new)] = weakref.ref(new)
    return new


torch.nn.Parameter.__deepcopy__ = _patched_param_deepcopy

_load_state_dict = torch.nn.Module.load_state_dict


def _patched_load_state_dict(self, state_dict, *args, **kwargs):
    # parameters given values by a state dict keep them (a fresh model loading a checkpoint)
    result = _load_state_dict(self, state_dict, *args, **kwargs)
    missing = set(result.missing_keys)
    for name, p in self.named_parameters():
        if name not in missing:
            _synced[id(p)] = weakref.ref(p)
    return result


torch.nn.Module.load_state_dict = _patched_load_state_dict


def _keep_loaded(fn):
    # a model read back from an archive (torch.jit.load, ExportedProgram.module) keeps the
    # values it was saved with
    def loaded(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, torch.nn.Module):
            for p in out.parameters():
                _synced[id(p)] = weakref.ref(p)
        return out

    return loaded


torch.jit.load = _keep_loaded(torch.jit.load)
try:
    import torch.export

    torch.export.ExportedProgram.module = _keep_loaded(torch.export.ExportedProgram.module)
except (ImportError, AttributeError):
    pass

_optimizer_init = torch.optim.Optimizer.__init__


def _patched_optimizer_init(self, params, *args, **kwargs):
    _optimizer_init(self, _sync_params(params), *args, **kwargs)


torch.optim.Optimizer.__init__ = _patched_optimizer_init

# programs that update weights by hand have no optimizer: sync at a model's first call
_module_call = torch.nn.Module.__call__
_depth = [0]


def _tracing():
    # NOTE: torch.fx calls submodules through the Module.__call__ it saved at import, past
    # this patch, and manygrad.fx through the current one: no sync while tracing, in both
    try:
        import torch.fx

        return torch.fx._symbolic_trace.is_fx_symbolic_tracing()
    except (ImportError, AttributeError):
        return False


def _patched_module_call(self, *args, **kwargs):
    if _depth[0] == 0 and not _tracing():
        # NOTE: under torch.func.functional_call the module holds the caller's tensors (plain
        # or batched), not parameters of its own: those are left alone; so are the constants
        # that torch.func.linearize folds into parameters of a traced module of its own
        _sync_params(
            p
            for name, p in self.named_parameters()
            if isinstance(p, torch.nn.Parameter) and "_FX_CONST_FOLDED_ATTRS" not in name
        )
    _depth[0] += 1
    try:
        return _module_call(self, *args, **kwargs)
    finally:
        _depth[0] -= 1


torch.nn.Module.__call__ = _patched_module_call


def _shape(size):
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _from(a, dtype=None, device=None):
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(dtype) if dtype is not None else t


def _randn(*size, dtype=None, device=None, requires_grad=False, **kw):
    t = _from(_RNG.standard_normal(_shape(kw.pop("size", None) or size)).astype(np.float32),
              dtype)  # fmt: skip
    return t.requires_grad_() if requires_grad else t


def _rand(*size, dtype=None, device=None, requires_grad=False, **kw):
    t = _from(_RNG.random(_shape(kw.pop("size", None) or size)).astype(np.float32), dtype)
    return t.requires_grad_() if requires_grad else t


def _randint(low, high=None, size=None, dtype=None, device=None, **kw):
    if high is None:
        low, high = 0, low
    return _from(_RNG.integers(low, high, _shape((size,))).astype(np.int64), dtype)


def _randperm(n, *, generator=None, dtype=None, device=None, **kw):
    return _from(_RNG.permutation(int(n)).astype(np.int64), dtype)


def _multinomial(input, num_samples, replacement=False, *, generator=None):  # noqa: A002
    w = input.detach().double().numpy()
    rows = w.reshape(-1, w.shape[-1])
    idx = [_RNG.choice(len(r), num_samples, replace=replacement, p=r / r.sum()) for r in rows]
    return torch.from_numpy(np.stack(idx).reshape(w.shape[:-1] + (num_samples,)))


torch.randn = _randn
torch.rand = _rand
torch.randint = _randint
torch.randperm = _randperm
torch.multinomial = _multinomial
torch.randn_like = lambda x, **kw: _randn(*x.shape, dtype=kw.get("dtype") or x.dtype)
torch.rand_like = lambda x, **kw: _rand(*x.shape, dtype=kw.get("dtype") or x.dtype)


def _categorical_sample(self, sample_shape=()):
    probs = self.probs.detach().numpy().astype(np.float64)
    shape = tuple(sample_shape) + probs.shape[:-1]
    u = _RNG.random(shape + (1,))
    cdf = np.cumsum(probs, -1)
    idx = np.minimum((cdf / cdf[..., -1:] <= u).sum(-1), probs.shape[-1] - 1)
    return torch.from_numpy(idx.astype(np.int64))


torch.distributions.Categorical.sample = _categorical_sample


def _normal_sample(self, sample_shape=()):
    with torch.no_grad():
        shape = tuple(sample_shape) + tuple(self.loc.shape)
        return self.loc + self.scale * _randn(*shape)


torch.distributions.Normal.sample = _normal_sample


def _normal_rsample(self, sample_shape=()):
    shape = tuple(sample_shape) + tuple(self.loc.shape)
    return self.loc + _randn(*shape) * self.scale


torch.distributions.Normal.rsample = _normal_rsample

_loader_init = torch.utils.data.DataLoader.__init__


def _patched_loader_init(self, *args, **kwargs):
    kwargs["shuffle"] = False
    _loader_init(self, *args, **kwargs)


torch.utils.data.DataLoader.__init__ = _patched_loader_init


def _random_split(dataset, lengths, generator=None):
    n = len(dataset)
    if all(isinstance(x, float) for x in lengths) and abs(sum(lengths) - 1) < 1e-6:
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    perm = _RNG.permutation(n).tolist()
    out, start = [], 0
    for k in lengths:
        out.append(torch.utils.data.Subset(dataset, perm[start : start + k]))
        start += k
    return out


torch.utils.data.random_split = _random_split


def _weighted_sampler_iter(self):
    w = np.asarray(self.weights.tolist() if hasattr(self.weights, "tolist") else self.weights)
    p = w.astype(np.float64) / w.sum()
    return iter(_RNG.choice(len(p), self.num_samples, replace=self.replacement, p=p).tolist())


torch.utils.data.WeightedRandomSampler.__iter__ = _weighted_sampler_iter

_dropout_init = torch.nn.Dropout.__init__


def _patched_dropout_init(self, *args, **kwargs):
    _dropout_init(self, *args, **kwargs)
    self.p = 0.0


torch.nn.Dropout.__init__ = _patched_dropout_init

if __name__ == "__main__":
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")

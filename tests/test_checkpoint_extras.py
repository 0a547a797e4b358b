"""torch.utils.checkpoint beyond checkpoint(): the legacy helpers, CheckpointFunction,
context_fn and selective activation checkpointing, checked against torch."""

import contextlib
import functools
import warnings

import numpy as np
import pytest

import manygrad as mg
from manygrad.ops.linalg import Matmul
from manygrad.utils import checkpoint as mc

torch = pytest.importorskip("torch")
tc = torch.utils.checkpoint

# NOTE: an op is its Function class; the one a tensor came from is type(t.grad_fn)
Sigmoid = type(mg.sigmoid(mg.ones(1, requires_grad=True)).grad_fn)
Add = type((mg.ones(1, requires_grad=True) + 1).grad_fn)
X = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
Y = np.random.default_rng(1).standard_normal((5, 5)).astype(np.float32)


def _fn(lib):
    def fn(x, y):
        return lib.sigmoid(lib.matmul(lib.matmul(x, y), y)) * y[0]

    return fn


def _leaves(lib):
    return lib.tensor(X, requires_grad=True), lib.tensor(Y, requires_grad=True)


def _grads(lib, run):
    x, y = _leaves(lib)
    out = run(x, y)
    out.pow(2).sum().backward()
    return [out.detach().numpy(), x.grad.numpy(), y.grad.numpy()]


def _close(a, b, tol=1e-5):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=tol, atol=tol)


def test_names_match_torch():
    missing = [n for n in tc.__all__ if n != "GraphExecGroup" and not hasattr(mc, n)]
    assert missing == []
    assert issubclass(mc.CheckpointError, RuntimeError)
    assert [p.name for p in mc.CheckpointPolicy] == [p.name for p in tc.CheckpointPolicy]
    assert [p.value for p in mc.CheckpointPolicy] == [p.value for p in tc.CheckpointPolicy]


def test_detach_variable_and_check_backward_validity():
    for lib, mod in ((mg, mc), (torch, tc)):
        a = lib.ones(2, requires_grad=True) * 2
        b = lib.ones(2)
        out = mod.detach_variable((a, b, 3))
        assert out[0].requires_grad and out[0].grad_fn is None and not out[1].requires_grad
        assert out[2] == 3 and isinstance(out, tuple)
        with pytest.raises(RuntimeError, match="Only tuple of tensors"):
            mod.detach_variable([a])
        with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True"):
            mod.check_backward_validity([b, 1])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mod.check_backward_validity([a, b])


def test_checkpoint_function_matches_torch():
    got = _grads(mg, lambda x, y: mc.CheckpointFunction.apply(_fn(mg), True, x, y))
    want = _grads(torch, lambda x, y: tc.CheckpointFunction.apply(_fn(torch), True, x, y))
    _close(got, want)


@pytest.mark.parametrize("how", ["function", "checkpoint"])
def test_recompute_replays_dropout_and_autocast(how):
    drop = mg.nn.Dropout(0.5)
    run = {"function": lambda f, x: mc.CheckpointFunction.apply(f, True, x),
           "checkpoint": lambda f, x: mc.checkpoint(f, x, use_reentrant=False)}[how]  # fmt: skip

    def fn(x):
        return drop(mg.nn.functional.linear(x, mg.ones(3, 5))).exp()

    res = []
    for ckpt in (False, True):
        mg.manual_seed(3)
        x = mg.tensor(X, requires_grad=True)
        with mg.autocast("cpu"):
            y = run(fn, x) if ckpt else fn(x)
        y.float().sum().backward()  # backward outside the autocast block
        res.append((y.float().detach().numpy(), x.grad.numpy()))
    assert res[1][0].dtype == np.float32
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_default_checkpoint_matches_torch(use_reentrant):
    run_m = functools.partial(mc.checkpoint, _fn(mg), use_reentrant=use_reentrant)
    run_t = functools.partial(tc.checkpoint, _fn(torch), use_reentrant=use_reentrant)
    _close(_grads(mg, run_m), _grads(torch, run_t))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(use_reentrant=True, context_fn=lambda: (contextlib.nullcontext(),) * 2),
         "context_fn"),
        (dict(use_reentrant=True, debug=True), "debug"),
        (dict(use_reentrant=True, extra=1), "Unexpected keyword arguments: extra"),
        (dict(use_reentrant=False, determinism_check="bits"), "determinism_check should be"),
        (dict(use_reentrant=False, debug=True,
              context_fn=lambda: (contextlib.nullcontext(),) * 2), "incompatible"),
    ],
)  # fmt: skip
def test_checkpoint_refuses_what_torch_refuses(kwargs, match):
    for lib, mod in ((mg, mc), (torch, tc)):
        x, y = _leaves(lib)
        with pytest.raises(ValueError, match=match):
            mod.checkpoint(_fn(lib), x, y, **kwargs)


def test_context_fn_runs_forward_and_recompute_under_its_contexts():
    counts = {}
    for lib, mod in ((mg, mc), (torch, tc)):
        seen = counts.setdefault(lib, [])

        @contextlib.contextmanager
        def tag(name, seen=seen):
            seen.append(name)
            yield

        def context_fn(tag=tag):
            return tag("forward"), tag("recompute")

        x, y = _leaves(lib)
        out = mod.checkpoint(_fn(lib), x, y, use_reentrant=False, context_fn=context_fn)
        out.sum().backward()
        with lib.no_grad():  # NOTE: no graph, no forward context (as PyTorch)
            mod.checkpoint(_fn(lib), x, y, use_reentrant=False, context_fn=context_fn)
    assert counts[mg] == counts[torch] == ["forward", "recompute"]


def _policy_log(lib, save):
    log = []

    def policy(ctx, op, *args, **kwargs):
        assert isinstance(ctx, (mc.SelectiveCheckpointContext, tc.SelectiveCheckpointContext))
        assert ctx.is_recompute is False and isinstance(ctx.op_output, lib.Tensor)
        log.append(op)
        return mc.CheckpointPolicy.MUST_SAVE if save(op) else mc.CheckpointPolicy.PREFER_RECOMPUTE

    return policy, log


def test_selective_checkpoint_with_a_policy_matches_torch():
    mp, mlog = _policy_log(mg, lambda op: op is Matmul)
    mp_t = lambda ctx, op, *a, **k: (  # noqa: E731
        tc.CheckpointPolicy.MUST_SAVE if op is torch.ops.aten.mm.default
        else tc.CheckpointPolicy.PREFER_RECOMPUTE)  # fmt: skip
    ctx_m = functools.partial(mc.create_selective_checkpoint_contexts, mp)
    ctx_t = functools.partial(tc.create_selective_checkpoint_contexts, mp_t)
    got = _grads(mg, lambda x, y: mc.checkpoint(_fn(mg), x, y, use_reentrant=False,
                                                 context_fn=ctx_m))  # fmt: skip
    want = _grads(torch, lambda x, y: tc.checkpoint(_fn(torch), x, y, use_reentrant=False,
                                                     context_fn=ctx_t))  # fmt: skip
    _close(got, want)
    # the policy saw each op of the forward once (two matmuls, a sigmoid, ...)
    assert mlog.count(Matmul) == 2 and mlog.count(Sigmoid) == 1


@pytest.mark.parametrize("how", ["list", "bool"])
def test_selective_checkpoint_with_an_op_list_or_bools(how):
    if how == "list":
        ctx_m = functools.partial(mc.create_selective_checkpoint_contexts, [Matmul, Sigmoid])
        ctx_t = functools.partial(tc.create_selective_checkpoint_contexts,
                                  [torch.ops.aten.mm.default, torch.ops.aten.sigmoid.default])  # fmt: skip
    else:
        ctx_m = functools.partial(mc.create_selective_checkpoint_contexts,
                                  lambda ctx, op, *a, **k: op is Sigmoid)  # fmt: skip
        ctx_t = functools.partial(tc.create_selective_checkpoint_contexts,
                                  lambda ctx, op, *a, **k: op is torch.ops.aten.sigmoid.default)  # fmt: skip
    got = _grads(mg, lambda x, y: mc.checkpoint(_fn(mg), x, y, use_reentrant=False,
                                                 context_fn=ctx_m))  # fmt: skip
    want = _grads(torch, lambda x, y: tc.checkpoint(_fn(torch), x, y, use_reentrant=False,
                                                     context_fn=ctx_t))  # fmt: skip
    _close(got, want)


def test_selective_checkpoint_refuses_bad_policies():
    for mod, bad in ((mc, [mg.matmul]), (tc, [torch.matmul])):
        with pytest.raises(ValueError, match="Expected op in `op_list` to be an OpOverload"):
            mod.create_selective_checkpoint_contexts(bad)
        with pytest.raises(TypeError, match="policy_fn_or_list must be either"):
            mod.create_selective_checkpoint_contexts(3)


def test_selective_checkpoint_backward_twice_is_refused_as_in_torch():
    for lib, mod, op in ((mg, mc, Matmul), (torch, tc, torch.ops.aten.mm.default)):
        ctx = functools.partial(mod.create_selective_checkpoint_contexts, [op])
        x, y = _leaves(lib)
        out = mod.checkpoint(_fn(lib), x, y, use_reentrant=False, context_fn=ctx)
        out.sum().backward(retain_graph=True)
        with pytest.raises(RuntimeError, match="backward an extra time"):
            out.sum().backward()


def test_selective_checkpoint_mutated_saved_output():
    def fn(lib):
        def f(x):
            h = x + 1
            out = h * 3 + lib.sin(x)  # (sin's saved input makes PyTorch recompute)
            h.mul_(2)  # the saved output of the add changes after it was saved
            return out

        return f

    for allow in (False, True):
        for lib, mod, op in ((mg, mc, Add), (torch, tc, torch.ops.aten.add.Tensor)):
            ctx = functools.partial(mod.create_selective_checkpoint_contexts, [op],
                                    allow_cache_entry_mutation=allow)  # fmt: skip
            x = lib.tensor(X, requires_grad=True)
            out = mod.checkpoint(fn(lib), x, use_reentrant=False, context_fn=ctx)
            if allow:
                out.sum().backward()
                np.testing.assert_allclose(x.grad.numpy(), 3 + np.cos(X), rtol=1e-6)
                continue
            with pytest.raises(RuntimeError, match="mutated"):
                out.sum().backward()


def test_recompute_of_a_different_shape_raises_checkpoint_error():
    for lib, mod in ((mg, mc), (torch, tc)):
        n = [4]

        def f(x, n=n, lib=lib):
            return lib.sin(x[: n[0]]) * 2

        x = lib.tensor(X, requires_grad=True)
        out = mod.checkpoint(f, x, use_reentrant=False)
        n[0] = 2
        with pytest.raises(mod.CheckpointError):
            out.sum().backward()
        with mod.set_checkpoint_debug_enabled(True):
            n[0] = 4
            out = mod.checkpoint(f, x, use_reentrant=False)
        n[0] = 3
        with pytest.raises(mod.CheckpointError) as err:
            out.sum().backward()
        if lib is mg:  # debug mode names the ops of both runs
            assert "Sin" in str(err.value) and "recomputation" in str(err.value)


def test_early_stop_and_noop_context_fn():
    for mod in (mc, tc):
        a, b = mod.noop_context_fn()
        with a, b:
            pass
    with mc.set_checkpoint_early_stop(False):
        got = _grads(mg, functools.partial(mc.checkpoint, _fn(mg), use_reentrant=False))
    _close(got, _grads(mg, _fn(mg)))


def test_default_device_type_as_torch():
    assert mc.DefaultDeviceType.get_device_type() == tc.DefaultDeviceType.get_device_type()
    old = mc.DefaultDeviceType._default_device_type
    try:
        mc.DefaultDeviceType.set_device_type("fakegpu")
        assert mc.DefaultDeviceType.get_device_type() == "fakegpu"
    finally:
        mc.DefaultDeviceType._default_device_type = old


def test_device_states():
    for lib, mod in ((mg, mc), (torch, tc)):
        assert mod.get_device_states(lib.ones(2), [lib.ones(1)], 3) == ([], [])
        mod.set_device_states([], [])
    a, b = mg.ones(2, device="fakegpu"), mg.ones(2, device="fakegpu:1")
    ids, states = mc.get_device_states(a, {"h": [b, a]})
    assert ids == [0, 1, 0] and len(states) == 3
    first = [mg.rand(3, device=d).cpu().numpy() for d in ("fakegpu", "fakegpu:1")]
    mc.set_device_states(ids[:2], states[:2], device_type="fakegpu")
    again = [mg.rand(3, device=d).cpu().numpy() for d in ("fakegpu", "fakegpu:1")]
    for u, v in zip(first, again):
        np.testing.assert_array_equal(u, v)


def test_checkpoint_sequential_still_takes_use_reentrant():
    res = []
    for lib, mod in ((mg, mc), (torch, tc)):
        lib.manual_seed(0)
        seq = lib.nn.Sequential(*[lib.nn.Linear(5, 5) for _ in range(4)])
        with lib.no_grad():
            for i, m in enumerate(seq):
                m.weight.copy_(lib.tensor(Y * (0.3 + i / 10)))
                m.bias.zero_()
        x = lib.tensor(X, requires_grad=True)
        mod.checkpoint_sequential(seq, 2, x, use_reentrant=False).sum().backward()
        res.append(x.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-5, atol=1e-5)

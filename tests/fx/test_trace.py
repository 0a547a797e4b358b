"""symbolic_trace against torch.fx: the same models give the same graphs (ops, names,
targets, arguments), and the generated modules the outputs and gradients of the models."""

import inspect

import numpy as np
import pytest
from fxmodels import assert_same_graph, build, canon, close, copy_weights

import manygrad as mg
import manygrad.fx as mfx
from manygrad import sigmoid

torch = pytest.importorskip("torch")
import torch.fx as tfx  # noqa: E402

T, M = build(torch), build(mg)
INPUTS = {"CNN": [(2, 3, 8, 8)], "Block": [(2, 5, 16)], "Mixer": [(3, 6), (3, 5)]}


def _pair(name):
    tm, mm = getattr(T, name)(), getattr(M, name)()
    copy_weights(tm, mm)
    return tm, mm


def _inputs(name, device="cpu"):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in INPUTS[name]]
    return ([torch.tensor(a, requires_grad=True) for a in arrays],
            [mg.tensor(a, device=device, requires_grad=True) for a in arrays])  # fmt: skip


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_graph_matches_torch_fx(name):
    tm, mm = _pair(name)
    tg, mgm = tfx.symbolic_trace(tm), mfx.symbolic_trace(mm)
    assert_same_graph(mgm.graph, tg.graph)
    assert isinstance(mgm, mfx.GraphModule) and mgm._get_name() == tg._get_name() == name


@pytest.mark.parametrize("name", ["CNN", "Block", "Mixer"])
def test_generated_module_matches_model_and_torch(name, device):
    if name == "Mixer" and device != "cpu":
        pytest.skip("Mixer's plain tensor attribute stays on the CPU (as in PyTorch)")
    tm, mm = _pair(name)
    mm.to(device)
    gm = mfx.symbolic_trace(mm)
    (tx, mx), (_, mx2) = _inputs(name, device), _inputs(name, device)
    ty, my, my2 = _first(tm(*tx)), _first(gm(*mx)), _first(mm(*mx2))
    close(my, ty, "traced vs torch")
    close(my, my2, "traced vs eager", rtol=0, atol=0)
    u = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(u))
    my.backward(mg.tensor(u, device=device))
    for t, m in zip(tx, mx):
        close(m.grad, t.grad, "input grad")
    for (n, tp), (_, mp) in zip(tm.named_parameters(), gm.named_parameters()):
        close(mp.grad, tp.grad, f"grad of {n}")


def test_state_dict_and_parameters_are_the_roots():
    tm, mm = _pair("CNN")
    gm = mfx.symbolic_trace(mm)
    assert list(gm.state_dict()) == list(tfx.symbolic_trace(tm).state_dict())
    assert all(a is b for a, b in zip(gm.parameters(), mm.parameters()))
    assert gm.training == mm.training


def test_concrete_args_specialize_like_torch():
    tm, mm = T.Gate(), M.Gate()
    copy_weights(tm, mm)
    concrete = {"use_relu": False, "bias": None}
    tg = tfx.symbolic_trace(tm, concrete_args=concrete)
    mgm = mfx.symbolic_trace(mm, concrete_args=concrete)
    assert_same_graph(mgm.graph, tg.graph)
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    close(mgm(mg.tensor(x), False, None), tg(torch.tensor(x), False, None))
    with pytest.raises(AssertionError, match="use_relu has been specialized"):
        mgm(mg.tensor(x), True, None)


def test_custom_leaf_module():
    tm, mm = T.WithLeaf(), M.WithLeaf()
    copy_weights(tm, mm)
    tgraph, mgraph = T.LeafTracer().trace(tm), M.LeafTracer().trace(mm)
    assert_same_graph(mgraph, tgraph)
    assert [n.op for n in mgraph.nodes if n.target == "clamp"] == ["call_module"]
    inner = canon(mfx.symbolic_trace(mm).graph)  # the default tracer goes into Clamp
    assert ("call_method", "clamp", "clamp", ("%lin", -0.5, 0.5), {}) in inner
    gm = mfx.GraphModule(mm, mgraph)
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    close(gm(mg.tensor(x)), tm(torch.tensor(x)))


def _scaled(x):
    return x * float(x.shape[0])  # float() of a traced value: not traceable


mfx.wrap("_scaled")


def test_wrap_keeps_a_function_as_one_node():
    class Net(mg.nn.Module):
        def forward(self, x):
            return _scaled(x) + 1

    gm = mfx.symbolic_trace(Net())
    (node,) = [n for n in gm.graph.nodes if n.op == "call_function" and n.target is _scaled]
    assert node.meta["is_wrapped"] and 'wrap("test_trace__scaled")' in gm.code
    x = mg.randn(3, 2)
    np.testing.assert_allclose(gm(x).numpy(), (x * 3 + 1).numpy())


def rowsum(x):
    return x.sum(dim=-1)


def test_autowrap_functions_and_names_imported_into_the_forward_module():
    class Net(mg.nn.Module):
        def forward(self, x):
            return rowsum(sigmoid(x))  # sigmoid: imported by name at the top of this module

    assert canon(mfx.symbolic_trace(Net()).graph)[1][2:] == ("sigmoid", ("%x",), {})
    graph = mfx.Tracer(autowrap_functions=(rowsum,)).trace(Net())
    # NOTE: inspect.unwrap: once manygrad.nested is imported, mg.sigmoid wraps the function
    # this module imported by name
    targets = [inspect.unwrap(n.target) for n in graph.nodes if n.op == "call_function"]
    assert targets == [inspect.unwrap(mg.sigmoid), rowsum]


def test_control_flow_errors_match_torch():
    def branch(x):
        if x.sum() > 0:
            return x
        return -x

    def loop(x):
        return [r for r in x]

    def length(x):
        return len(x)

    for fn in (branch, loop, length):
        with pytest.raises(Exception) as te:
            tfx.symbolic_trace(fn)
        with pytest.raises(Exception) as me:
            mfx.symbolic_trace(fn)
        assert type(me.value).__name__ == type(te.value).__name__
        assert isinstance(me.value, type(te.value).__mro__[1])  # ValueError / RuntimeError
        assert str(me.value) == str(te.value)


def test_patches_are_undone_after_a_trace_and_after_a_failed_one():
    namespaces = [mg, mg.nn.functional, mg.special, mg.linalg, mg.fft]
    before = [dict(vars(ns)) for ns in namespaces]
    tensor_before = dict(vars(mg.Tensor))
    call, getattr_ = mg.nn.Module.__call__, mg.nn.Module.__getattr__

    class Bad(mg.nn.Module):
        def forward(self, x):
            y = mg.relu(x)
            if y.sum() > 0:
                return y
            return x

    mfx.symbolic_trace(M.CNN())
    with pytest.raises(mfx.proxy.TraceError):
        mfx.symbolic_trace(Bad())
    for ns, b in zip(namespaces, before):
        assert all(vars(ns).get(k) is v for k, v in b.items()), ns.__name__
    assert dict(vars(mg.Tensor)) == tensor_before
    assert mg.nn.Module.__call__ is call and mg.nn.Module.__getattr__ is getattr_
    assert float(mg.relu(mg.tensor(-1.0))) == 0.0


def test_recorded_targets_are_the_original_functions():
    gm = mfx.symbolic_trace(M.CNN())
    targets = {n.name: n.target for n in gm.graph.nodes if n.op == "call_function"}
    assert targets["relu"] is mg.nn.functional.relu and targets["relu_1"] is mg.relu
    assert targets["flatten"] is mg.flatten
    assert "manygrad.nn.functional.relu(" in gm.code and "manygrad.flatten(" in gm.code


def test_a_function_imported_into_a_helper_module_names_the_limitation():
    from manygrad.ops import elementwise  # its relu is no patched namespace entry

    class Net(mg.nn.Module):
        def forward(self, x):
            return elementwise.relu(x)

    with pytest.raises(TypeError, match="got Proxy"):
        mfx.symbolic_trace(Net())


def test_unpacking_a_known_number_of_values():
    def fn(x):
        a, b = x.chunk(2, dim=0)
        return a * b

    assert_same_graph(mfx.symbolic_trace(fn).graph, tfx.symbolic_trace(fn).graph)


def test_traced_plain_function_and_tensor_constants():
    const = mg.tensor([1.0, 2.0])
    tconst = torch.tensor([1.0, 2.0])

    def mfn(x):
        return const * x + mg.ones(2) + x.size(0)

    def tfn(x):
        return tconst * x + torch.ones(2) + x.size(0)

    mgm, tgm = mfx.symbolic_trace(mfn), tfx.symbolic_trace(tfn)
    assert_same_graph(mgm.graph, tgm.graph)
    assert mgm._get_name() == "mfn" and hasattr(mgm, "_tensor_constant0")
    close(mgm(mg.tensor([3.0, 4.0])), tgm(torch.tensor([3.0, 4.0])))


def test_is_fx_symbolic_tracing_inside_a_trace_only():
    from manygrad.fx._symbolic_trace import is_fx_symbolic_tracing, is_fx_tracing

    seen = []

    class M(mg.nn.Module):
        def forward(self, x):
            seen.append((is_fx_tracing(), is_fx_symbolic_tracing()))
            return x + 1

    mfx.symbolic_trace(M())
    assert seen == [(True, True)]
    M()(mg.ones(1))
    assert seen[-1] == (False, False)

"""Graph, Node and GraphModule built and edited by hand, against torch.fx: printing,
generated code, editing, checks, copies, pickling and saving."""

import copy
import operator
import pickle
import sys
import types

import numpy as np
import pytest
from fxmodels import assert_same_graph, build, canon, close, copy_weights

import manygrad as mg
import manygrad.fx as mfx

torch = pytest.importorskip("torch")
import torch.fx as tfx  # noqa: E402

T, M = build(torch), build(mg)


def _hand_graph(fx):
    """x, y -> ((x + y) * 2).neg() with a dead node, using operator targets and a method."""
    g = fx.Graph()
    x, y = g.placeholder("x"), g.placeholder("y", default_value=1.0)
    add = g.call_function(operator.add, (x, y))
    g.call_function(operator.sub, (x, y))  # dead
    mul = g.call_function(operator.mul, (add, 2))
    neg = g.call_method("neg", (mul,))
    g.output(neg)
    return g


def test_hand_built_graph_prints_and_runs_as_torchs():
    tg, mgr = _hand_graph(tfx), _hand_graph(mfx)
    assert str(mgr) == str(tg)
    tmod, mmod = tfx.GraphModule(torch.nn.Module(), tg), mfx.GraphModule(mg.nn.Module(), mgr)
    assert mmod.code == tmod.code
    close(mmod(mg.tensor([1.0, 2.0])), tmod(torch.tensor([1.0, 2.0])))
    assert mgr.eliminate_dead_code() and tg.eliminate_dead_code()
    assert str(mgr) == str(tg) and not mgr.eliminate_dead_code()


def test_node_api_matches_torch():
    for fx in (tfx, mfx):
        g = _hand_graph(fx)
        x, y, add, sub, mul, neg, out = g.nodes
        assert (add.op, add.target, add.args, dict(add.kwargs)) == ("call_function", operator.add,
                                                                    (x, y), {})  # fmt: skip
        assert list(x.users) == [add, sub] and add.all_input_nodes == [x, y]
        assert add.next is sub and sub.prev is add and repr(add) == "add"
        assert isinstance(x, fx.Node) and y.args == (1.0,)
        mul.replace_input_with(add, sub)
        assert mul.args == (sub, 2) and list(add.users) == []
        assert sub.replace_all_uses_with(add) == [mul] and mul.args == (add, 2)
        mul.update_arg(1, 3)
        neg.update_kwarg("k", None)
        assert mul.args == (add, 3) and dict(neg.kwargs) == {"k": None}
        neg.kwargs = {}
        mul.meta["tag"] = "m"
        assert mul.format_node() == ("%mul : [num_users=1] = call_function[target=operator.mul]"
                                     "(args = (%add, 3), kwargs = {})")  # fmt: skip
        g.erase_node(sub)
        with pytest.raises(RuntimeError, match="still had 1 users"):
            g.erase_node(add)
        add.append(neg)  # neg now comes before the mul it uses
        with pytest.raises(RuntimeError, match="used before it has been defined"):
            g.lint()
        mul.append(neg)
        g.lint()
        assert [n.name for n in g.nodes] == ["x", "y", "add", "mul", "neg", "output"]


def test_arguments_are_immutable():
    for fx in (tfx, mfx):
        args = fx.node.map_aggregate(([1, 2], {"a": 3}), lambda v: v)
        with pytest.raises(TypeError, match="does not support mutation"):
            args[0].append(3)
        with pytest.raises(TypeError, match="does not support mutation"):
            args[1]["b"] = 1
        assert fx.map_arg((1, [2]), lambda n: n) == (1, [2])


def test_inserting_before_after_node_copy_and_graph_copy():
    for fx in (tfx, mfx):
        g = _hand_graph(fx)
        x, y, add, sub, mul, neg, out = g.nodes
        with g.inserting_after(add):
            relu = g.call_method("relu", (add,))
        with g.inserting_after(relu):
            g.call_method("exp", (relu,))
        with g.inserting_before(mul):
            g.node_copy(sub)
        assert [n.name for n in g.nodes] == ["x", "y", "add", "relu", "exp", "sub", "sub_1",
                                             "mul", "neg", "output"]  # fmt: skip
        mul.prepend(neg)  # neg before mul: used before defined
        with pytest.raises(RuntimeError, match="used before it has been defined"):
            g.lint()
        neg.prepend(mul)
        g.lint()
        h = fx.Graph()
        val_map = {}
        rv = h.graph_copy(g, val_map)
        h.output(rv)
        assert [n.name for n in h.nodes] == [n.name for n in g.nodes]
        assert str(copy.deepcopy(g)) == str(g)


def test_lint_checks_targets_of_the_owning_module():
    for fx, lib in ((tfx, torch), (mfx, mg)):
        g = fx.Graph()
        x = g.placeholder("x")
        g.output(g.create_node("call_module", "missing", (x,)))
        g.owning_module = lib.nn.Module()
        with pytest.raises(RuntimeError, match="references nonexistent attribute missing"):
            g.lint()


def test_print_tabular_needs_tabulate(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tabulate", None)
    for fx in (tfx, mfx):
        with pytest.raises(ImportError):
            _hand_graph(fx).print_tabular()
        assert "pip install tabulate" in capsys.readouterr().out
    fake = types.ModuleType("tabulate")
    fake.tabulate = lambda rows, headers: "\n".join(
        [" ".join(headers)] + [" ".join(str(c) for c in r[:3]) for r in rows]
    )
    monkeypatch.setitem(sys.modules, "tabulate", fake)
    _hand_graph(mfx).print_tabular()
    out = capsys.readouterr().out
    assert "opcode name target args kwargs" in out and "call_function add <built-in" in out


def _pair(name):
    tm, mm = getattr(T, name)(), getattr(M, name)()
    copy_weights(tm, mm)
    return tm, mm


def test_code_and_print_readable():
    tm, mm = _pair("CNN")
    tgm, mgm = tfx.symbolic_trace(tm), mfx.symbolic_trace(mm)
    lines = [ln.split(" = ")[0] for ln in mgm.code.splitlines()]
    assert lines == [ln.split(" = ")[0] for ln in tgm.code.splitlines()]
    assert "conv1 = self.conv1(x);  x = None" in mgm.code
    text = mgm.print_readable(print_output=False)
    assert text.startswith("class CNN(torch.nn.Module):\n    def forward(self, x")
    assert str(mgm).endswith("# To see more debug info, please use `graph_module.print_readable()`")


def _check_same(a, b, x):
    assert a.code == b.code and canon(a.graph) == canon(b.graph)
    np.testing.assert_allclose(a(x).detach().numpy(), b(x).detach().numpy())
    assert list(a.state_dict()) == list(b.state_dict())


def test_deepcopy_pickle_and_save_roundtrips(tmp_path):
    tm, mm = _pair("Mixer")
    gm = mfx.symbolic_trace(mm)
    x, y = mg.randn(3, 6), mg.randn(3, 5)
    tg = tfx.symbolic_trace(tm)
    for make in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        dup = make(gm)
        assert dup._get_name() == make(tg)._get_name() == "GraphModule"
        assert dup.code == gm.code and canon(dup.graph) == canon(gm.graph)
        a, b = gm(x, y), dup(x, y)
        np.testing.assert_allclose(a[0].detach().numpy(), b[0].detach().numpy())
        assert dup.lin.weight is not gm.lin.weight
        close(dup.lin.weight, gm.lin.weight, rtol=0, atol=0)
    mg.save(gm, tmp_path / "gm.pt")
    loaded = mg.load(tmp_path / "gm.pt", weights_only=False)
    assert isinstance(loaded, mfx.GraphModule) and loaded.code == gm.code
    np.testing.assert_allclose(loaded(x, y)[0].detach().numpy(), gm(x, y)[0].detach().numpy())
    shallow = copy.copy(gm)
    assert shallow.lin is gm.lin and shallow.code == gm.code


def test_submodule_management():
    tm, mm = _pair("CNN")
    for fx, lib, m in ((tfx, torch, tm), (mfx, mg, mm)):
        gm = fx.symbolic_trace(m)
        assert gm.add_submodule("extra.deep", lib.nn.ReLU())
        assert isinstance(gm.get_submodule("extra.deep"), lib.nn.ReLU)
        assert gm.delete_submodule("extra.deep") and not gm.delete_submodule("extra.deep")
        gm.add_submodule("unused", lib.nn.Tanh())
        gm.delete_all_unused_submodules()
        assert [n for n, _ in gm.named_children()] == ["conv1", "bn1", "pool", "conv2", "fc"]


def test_graph_assignment_recompiles():
    gm = mfx.symbolic_trace(M.Pair())
    g = copy.deepcopy(gm.graph)
    mul = next(n for n in g.nodes if n.target is operator.mul)
    mul.target = operator.add
    gm.graph = g
    assert "add_2 = relu + relu_1" not in gm.code and "relu + relu_1" in gm.code
    x, y = mg.randn(4), mg.randn(4)
    a = mg.relu(x + y)
    np.testing.assert_allclose(gm(x, y).numpy(), (a + mg.relu(a + y)).numpy(), rtol=1e-6)


def test_retracing_a_graph_module_gives_the_same_graph():
    tm, mm = _pair("Block")
    gm = mfx.symbolic_trace(mm)
    again = mfx.symbolic_trace(gm)
    assert_same_graph(again.graph, tfx.symbolic_trace(tfx.symbolic_trace(tm)).graph)
    x = mg.randn(2, 5, 16)
    close(again(x), gm(x), rtol=1e-6, atol=1e-7)


def test_generated_code_names_manygrad_constants_and_dict_roots():
    g = mfx.Graph()
    x = g.placeholder("x")
    w = g.get_attr("sub.w")
    to = g.call_method("to", (x,), {"dtype": mg.float64, "device": mg.device("cpu")})
    g.output(g.call_function(mg.matmul, (to, w)))
    gm = mfx.GraphModule({"sub.w": mg.ones(2, 3, dtype=mg.float64)}, g)
    assert "x.to(dtype = manygrad.float64, device = manygrad.device('cpu'))" in gm.code
    assert "manygrad.matmul(to, sub_w)" in gm.code and list(gm.state_dict()) == ["sub.w"]
    np.testing.assert_allclose(gm(mg.ones(1, 2)).numpy(), [[2.0, 2.0, 2.0]])
    with pytest.warns(UserWarning, match="no underlying reference"):
        gm.graph.get_attr("nowhere")
    with pytest.raises(RuntimeError, match="not provided in ``root``"):
        mfx.GraphModule({}, g)

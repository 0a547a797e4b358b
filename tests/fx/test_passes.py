"""Passes over traced graphs against torch.fx: Interpreter and Transformer (with per-op
overrides), ShapeProp metadata, replace_pattern, and a feature-extraction recipe."""

import operator

import numpy as np
import pytest
from fxmodels import assert_same_graph, build, close, copy_weights

import manygrad as mg
import manygrad.fx as mfx
from manygrad.fx.passes.shape_prop import ShapeProp as MShapeProp

torch = pytest.importorskip("torch")
import torch.fx as tfx  # noqa: E402
from torch.fx.passes.shape_prop import ShapeProp as TShapeProp  # noqa: E402

T, M = build(torch), build(mg)


def _traced(name):
    tm, mm = getattr(T, name)(), getattr(M, name)()
    copy_weights(tm, mm)
    tm.eval(), mm.eval()
    return tfx.symbolic_trace(tm), mfx.symbolic_trace(mm)


def _x(*shape, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return torch.tensor(a), mg.tensor(a)


def _interpreters(fx):
    class Doubler(fx.Interpreter):
        """Doubles what every relu gives and every leaf module returns."""

        def call_function(self, target, args, kwargs):
            out = super().call_function(target, args, kwargs)
            return out * 2 if getattr(target, "__name__", "") == "relu" else out

        def call_module(self, target, args, kwargs):
            return super().call_module(target, args, kwargs) * 2

    class ToSigmoid(fx.Transformer):
        """relu -> sigmoid, + -> *."""

        def call_function(self, target, args, kwargs):
            if getattr(target, "__name__", "") == "relu":
                target = type(self).sigmoid
            elif target is operator.add:
                target = operator.mul
            return super().call_function(target, args, kwargs)

    return Doubler, ToSigmoid


def test_interpreter_runs_the_graph_and_takes_overrides():
    tgm, mgm = _traced("CNN")
    tx, mx = _x(2, 3, 8, 8)
    close(mfx.Interpreter(mgm).run(mx), tgm(tx))
    close(mfx.Interpreter(mgm, garbage_collect_values=False).run(mx), mgm(mx), rtol=0, atol=0)
    (TD, _), (MD, _) = _interpreters(tfx), _interpreters(mg.fx)
    close(MD(mgm).run(mx), TD(tgm).run(tx))
    interp = mfx.Interpreter(mgm)
    close(interp.boxed_run([mx]), tgm(tx))
    with pytest.raises(RuntimeError, match="expected 1 arguments for placeholders"):
        interp.boxed_run([])


def test_transformer_rewrites_like_torchs():
    tgm, mgm = _traced("Pair")
    (_, TT), (_, MT) = _interpreters(tfx), _interpreters(mg.fx)
    TT.sigmoid, MT.sigmoid = staticmethod(torch.sigmoid), staticmethod(mg.sigmoid)
    tnew, mnew = TT(tgm).transform(), MT(mgm).transform()
    assert_same_graph(mnew.graph, tnew.graph)
    assert "manygrad.sigmoid(" in mnew.code
    (tx, mx), (ty, my) = _x(5, seed=1), _x(5, seed=2)
    close(mnew(mx, my), tnew(tx, ty))
    tcnn, mcnn = _traced("CNN")
    tx, mx = _x(2, 3, 8, 8)
    close(mfx.Transformer(mcnn).transform()(mx), tcnn(tx))


def test_shape_prop_records_torchs_metadata():
    tgm, mgm = _traced("CNN")
    tx, mx = _x(2, 3, 8, 8)
    TShapeProp(tgm).propagate(tx)
    MShapeProp(mgm).propagate(mx)
    for tn, mn in zip(tgm.graph.nodes, mgm.graph.nodes):
        assert ("tensor_meta" in tn.meta) == ("tensor_meta" in mn.meta), tn.name
        if "tensor_meta" not in tn.meta:
            continue
        t, m = tn.meta["tensor_meta"], mn.meta["tensor_meta"]
        assert tuple(m.shape) == tuple(t.shape), tn.name
        assert str(m.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], tn.name
        assert m.requires_grad == t.requires_grad and tuple(m.stride) == tuple(t.stride), tn.name
        assert repr(m.memory_format) == repr(t.memory_format) and m.is_quantized is False
        assert mn.meta["type"].__name__ == tn.meta["type"].__name__
    assert "f32[2, 10]" in mgm.print_readable(print_output=False)


def test_shape_prop_of_several_outputs():
    tm, mm = T.Mixer(), M.Mixer()
    copy_weights(tm, mm)
    tgm, mgm = tfx.symbolic_trace(tm), mfx.symbolic_trace(mm)
    (tx, mx), (ty, my) = _x(3, 6), _x(3, 5, seed=1)
    TShapeProp(tgm).propagate(tx, ty)
    MShapeProp(mgm).propagate(mx, my)
    tout, mout = list(tgm.graph.nodes)[-1], list(mgm.graph.nodes)[-1]
    assert [tuple(m.shape) for m in mout.meta["tensor_meta"]] == [
        tuple(t.shape) for t in tout.meta["tensor_meta"]]  # fmt: skip


def test_replace_pattern_matches_and_rewrites_like_torch():
    tgm, mgm = _traced("Pair")
    tmatches = tfx.replace_pattern(tgm, T.pattern, T.replacement)
    mmatches = mfx.replace_pattern(mgm, M.pattern, M.replacement)
    assert len(mmatches) == len(tmatches) == 2
    assert [m.anchor.name for m in mmatches] == [m.anchor.name for m in tmatches]
    assert_same_graph(mgm.graph, tgm.graph)
    (tx, mx), (ty, my) = _x(6, seed=3), _x(6, seed=4)
    close(mgm(mx, my), tgm(tx, ty))
    assert mfx.replace_pattern(mgm, M.pattern, M.replacement) == []


def test_replace_pattern_skips_a_match_whose_inner_value_is_used_elsewhere():
    def body(lib):
        def fn(x, y):
            s = x + y
            return lib.relu(s) * s  # s escapes the pattern relu(x + y)

        return fn

    tgm, mgm = tfx.symbolic_trace(body(torch)), mfx.symbolic_trace(body(mg))
    assert len(tfx.replace_pattern(tgm, T.pattern, T.replacement)) == 0
    assert len(mfx.replace_pattern(mgm, M.pattern, M.replacement)) == 0


def _features(fx, model, names, *inputs):
    """torchvision's create_feature_extractor, in short: the output becomes a dict of inner
    nodes, dead code and unused submodules go."""
    gm = fx.symbolic_trace(model)
    nodes = {n.name: n for n in gm.graph.nodes}
    out = list(gm.graph.nodes)[-1]
    out.args = ({name: nodes[name] for name in names},)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    gm.delete_all_unused_submodules()
    return gm, gm(*inputs)


def test_feature_extraction_gives_torchs_features():
    tm, mm = T.CNN(), M.CNN()
    copy_weights(tm, mm)
    tm.eval(), mm.eval()
    tx, mx = _x(2, 3, 8, 8)
    names = ["relu", "pool", "flatten"]
    tgm, tf = _features(tfx, tm, names, tx)
    mgm, mf = _features(mfx, mm, names, mx)
    assert list(mf) == list(tf) == names
    for k in names:
        close(mf[k], tf[k], k)
    assert [n for n, _ in mgm.named_children()] == [n for n, _ in tgm.named_children()]
    assert "fc" not in dict(mgm.named_children())


def _neg_sigm_swap(fx, lib):
    """The Transformer of PyTorch's docstring: sigmoid -> neg, neg -> sigmoid."""

    class NegSigmSwap(fx.Transformer):
        def call_function(self, target, args, kwargs):
            if target == lib.sigmoid:
                return lib.neg(*args, **kwargs)
            return super().call_function(target, args, kwargs)

        def call_method(self, target, args, kwargs):
            if target == "neg":
                call_self, *args_tail = args
                return call_self.sigmoid(*args_tail, **kwargs)
            return super().call_method(target, args, kwargs)

    def fn(x):
        return lib.sigmoid(x).neg()

    return NegSigmSwap(fx.symbolic_trace(fn)).transform()


def test_transformer_overrides_may_call_library_functions_on_proxies():
    before = (mg.sigmoid, mg.neg)
    tnew, mnew = _neg_sigm_swap(tfx, torch), _neg_sigm_swap(mfx, mg)
    assert_same_graph(mnew.graph, tnew.graph)
    tx, mx = _x(5, seed=5)
    close(mnew(mx), tnew(tx))
    assert (mg.sigmoid, mg.neg) == before and mg.neg is before[1]  # the patches are undone


def test_a_patched_function_passed_as_target_records_the_original():
    class ToNeg(mfx.Transformer):
        def call_function(self, target, args, kwargs):
            if target == mg.sigmoid:
                target = mg.neg  # the patched one, while transform runs
            return super().call_function(target, args, kwargs)

    new = ToNeg(mfx.symbolic_trace(M.pattern)).transform()
    assert [n.target for n in new.graph.nodes if n.op == "call_function"][1] is mg.relu
    new = ToNeg(mfx.symbolic_trace(M.replacement)).transform()
    assert [n.target for n in new.graph.nodes if n.op == "call_function"][1] is mg.neg
    np.testing.assert_allclose(new(mg.ones(2), mg.zeros(2)).numpy(), [-1.0, -1.0])

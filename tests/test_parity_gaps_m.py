"""PyTorch parity, compared with PyTorch: the ``torch.return_types`` tuples (names, fields,
repr, tuple behaviour, pickling, ``out=`` types, the import hook); inference tensors outside
``inference_mode`` (saved for backward, updated in place, ``requires_grad_``, views,
parameters); sparse COO function forms (elementwise ops, ``cat``, ``narrow_copy``)."""

import copy
import math
import pickle
import textwrap
import warnings

import numpy as np
import pytest
import torch

import manygrad as mg
from manygrad import compat
from parity_helpers import _both_raise, _np

pytestmark = pytest.mark.filterwarnings(
    "ignore:Sparse invariant checks", "ignore:torch.lu is deprecated",
    "ignore:torch.triangular_solve is deprecated", "ignore:An output with one or more",
    "ignore:torch.qr is deprecated", "ignore::RuntimeWarning",
)  # fmt: skip


# ---------------------------------------------------------------------------- return types

X = [[1.0, 3.0, 2.0], [4.0, 0.0, 5.0], [2.5, 2.0, 7.0]]
SPD = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]]

_RESULTS = {
    "max": lambda lb, x, a: lb.max(x, 1),
    "min": lambda lb, x, a: lb.min(x, dim=0, keepdim=True),
    "x.max": lambda lb, x, a: x.max(1),
    "median": lambda lb, x, a: lb.median(x, 1),
    "nanmedian": lambda lb, x, a: lb.nanmedian(x, 0),
    "mode": lambda lb, x, a: lb.mode(x, 1),
    "kthvalue": lambda lb, x, a: lb.kthvalue(x, 2, 1),
    "sort": lambda lb, x, a: lb.sort(x, descending=True),
    "x.sort": lambda lb, x, a: x.sort(0),
    "topk": lambda lb, x, a: lb.topk(x, 2),
    "x.topk": lambda lb, x, a: x.topk(1, dim=0),
    "cummax": lambda lb, x, a: lb.cummax(x, 1),
    "cummin": lambda lb, x, a: lb.cummin(x, 0),
    "aminmax": lambda lb, x, a: lb.aminmax(x),
    "x.aminmax": lambda lb, x, a: x.aminmax(dim=1),
    "frexp": lambda lb, x, a: lb.frexp(x),
    "histogram": lambda lb, x, a: lb.histogram(x.flatten(), 3),
    "histogramdd": lambda lb, x, a: lb.histogramdd(x[:, :2].contiguous(), 2),
    "geqrf": lambda lb, x, a: lb.geqrf(a),
    "slogdet": lambda lb, x, a: lb.slogdet(a),
    "linalg.slogdet": lambda lb, x, a: lb.linalg.slogdet(a),
    "linalg.eigh": lambda lb, x, a: lb.linalg.eigh(a),
    "linalg.eig": lambda lb, x, a: lb.linalg.eig(a),
    "linalg.svd": lambda lb, x, a: lb.linalg.svd(a),
    "svd": lambda lb, x, a: lb.svd(a),
    "linalg.qr": lambda lb, x, a: lb.linalg.qr(a),
    "qr": lambda lb, x, a: lb.qr(a),
    "x.qr": lambda lb, x, a: a.qr(),
    "linalg.lu_factor": lambda lb, x, a: lb.linalg.lu_factor(a),
    "linalg.lu_factor_ex": lambda lb, x, a: lb.linalg.lu_factor_ex(a),
    "linalg.lu": lambda lb, x, a: lb.linalg.lu(a),
    "lu_unpack": lambda lb, x, a: lb.lu_unpack(*lb.linalg.lu_factor(a)),
    "linalg.solve_ex": lambda lb, x, a: lb.linalg.solve_ex(a, a),
    "linalg.inv_ex": lambda lb, x, a: lb.linalg.inv_ex(a),
    "linalg.cholesky_ex": lambda lb, x, a: lb.linalg.cholesky_ex(a),
    "linalg.ldl_factor": lambda lb, x, a: lb.linalg.ldl_factor(a),
    "linalg.ldl_factor_ex": lambda lb, x, a: lb.linalg.ldl_factor_ex(a),
    "linalg.lstsq": lambda lb, x, a: lb.linalg.lstsq(a, a),
    "triangular_solve": lambda lb, x, a: lb.triangular_solve(a, a),
    "lu(get_infos)": lambda lb, x, a: lb.lu(a, get_infos=True),
}


def _inputs(lib, device=None):
    kw = {} if device is None else {"device": device}
    return lib.tensor(X, **kw), lib.tensor(SPD, **kw)


def _check_values(got, want):
    for g, w in zip(got, want):
        if isinstance(w, tuple):
            _check_values(g, w)
        elif w.dtype.is_complex or w.numel() == 0:
            assert tuple(g.shape) == tuple(w.shape)
        else:
            np.testing.assert_allclose(_np(g), _np(w), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", list(_RESULTS))
def test_result_type_is_pytorchs(device, case):
    want = _RESULTS[case](torch, *_inputs(torch))
    got = _RESULTS[case](mg, *_inputs(mg, device))
    tw, tg = type(want), type(got)
    assert tg.__name__ == tw.__name__ and tg.__qualname__ == tw.__qualname__
    assert tg.__module__ == "manygrad.return_types" and tg.__mro__[1:] == (tuple, object)
    assert tg.__match_args__ == tw.__match_args__
    assert (got.n_fields, got.n_sequence_fields, got.n_unnamed_fields) == (
        want.n_fields, want.n_sequence_fields, want.n_unnamed_fields)  # fmt: skip
    assert getattr(mg.return_types, tg.__name__) is tg
    assert hasattr(want, "_fields") is hasattr(got, "_fields") is False
    for f in tw.__match_args__:
        assert getattr(got, f) is got[tw.__match_args__.index(f)]
    if case not in ("linalg.eig", "linalg.svd", "svd", "linalg.eigh"):
        _check_values(got, want)


def test_every_pytorch_return_type_is_there_with_its_fields():
    rt = torch.return_types
    public = [n for n in rt.__all__ if isinstance(getattr(rt, n), type)]
    assert len(public) > 60
    for name in public:
        tw, tg = getattr(torch.return_types, name), getattr(mg.return_types, name)
        assert tg.__name__ == name and tg.__match_args__ == tw.__match_args__, name
        assert tg.n_fields == tw.n_fields, name
    assert sorted(n for n in mg.return_types.__all__) == sorted(public)
    assert [t.__name__ for t in mg.return_types.all_return_types] == list(mg.return_types.__all__)
    assert mg.return_types._lu_with_info.__match_args__ == (
        torch.return_types._lu_with_info.__match_args__)  # fmt: skip


@pytest.mark.parametrize("case", ["topk", "max", "frexp", "histogramdd", "linalg.slogdet",
                                  "aminmax", "linalg.lu"])  # fmt: skip
def test_repr_is_pytorchs(monkeypatch, case):
    want = _RESULTS[case](torch, *_inputs(torch))
    got = _RESULTS[case](mg, *_inputs(mg))
    assert repr(got).startswith(f"manygrad.return_types.{type(want).__name__}(\n")
    monkeypatch.setattr(mg.dtypes, "display_module", "torch")  # as under the import hook
    body = ",\n".join(f"{k}={v!r}" for k, v in zip(type(want).__match_args__, got))
    assert repr(got) == str(got) == f"torch.return_types.{type(want).__name__}(\n{body})"
    if case != "linalg.lu":  # NOTE: the same tensor reprs: the whole text is PyTorch's
        assert repr(got) == repr(want)


def test_repr_with_a_graph_as_manygrad_prints_the_tensors(monkeypatch):
    monkeypatch.setattr(mg.dtypes, "display_module", "torch")
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    r = mg.max(x * 2, 0)
    assert repr(r) == f"torch.return_types.max(\nvalues={r.values!r},\nindices={r.indices!r})"
    assert "grad_fn=" in repr(r)


def test_results_behave_as_tuples(device):
    x = mg.tensor(X, device=device)
    r = mg.topk(x, 2)
    t = torch.topk(torch.tensor(X), 2)
    values, indices = r
    assert values is r[0] is r.values and indices is r[-1] is r.indices and len(r) == 2
    assert isinstance(r, tuple) and r == tuple(r) and r[:1] == (r.values,)
    assert type(r[:1]) is type(t[:1]) is tuple and type(r + (1,)) is tuple
    assert tuple(r.__match_args__) == ("values", "indices")
    for attr, exc in (("values", AttributeError), ("other", AttributeError)):
        with pytest.raises(exc):
            setattr(r, attr, 1)
        with pytest.raises(exc):
            setattr(t, attr, 1)
    match r:
        case mg.return_types.topk(values=v, indices=i):
            assert v is values and i is indices


def test_results_pickle_and_copy_as_pytorchs():
    r = mg.sort(mg.tensor(X), 1)
    t = torch.sort(torch.tensor(X), 1)
    for got, want in ((pickle.loads(pickle.dumps(r)), pickle.loads(pickle.dumps(t))),
                      (copy.deepcopy(r), copy.deepcopy(t)), (copy.copy(r), copy.copy(t))):  # fmt: skip
        assert type(got) is type(r) and type(want) is type(t)
        _check_values(got, want)
    assert r.__reduce__()[0] is type(r) and r.__reduce__()[1][1] == {}
    assert t.__reduce__()[1][1] == {}


def test_constructor_takes_one_sequence_as_pytorchs():
    for lib in (torch, mg):
        cls = lib.return_types.max
        assert tuple(cls((1, 2))) == tuple(cls([1, 2])) == tuple(cls(iter((1, 2)))) == (1, 2)
        with pytest.raises(TypeError, match="constructor requires a sequence"):
            cls(1)
        with pytest.raises(TypeError, match=r"max\(\) takes a 2-sequence \(3-sequence given\)"):
            cls((1, 2, 3))
        with pytest.raises(TypeError):
            cls(1, 2)


_OUTS = [
    lambda lb, x, **o: lb.max(x, 1, **o),
    lambda lb, x, **o: lb.sort(x, 1, **o),
    lambda lb, x, **o: lb.topk(x, 2, **o),
    lambda lb, x, **o: lb.kthvalue(x, 1, 1, **o),
    lambda lb, x, **o: lb.cummax(x, 1, **o),
    lambda lb, x, **o: lb.aminmax(x, dim=0, **o),
    lambda lb, x, **o: lb.frexp(x, **o),
    lambda lb, x, **o: lb.linalg.slogdet(x, **o),
    lambda lb, x, **o: lb.linalg.eigh(x, **o),
    lambda lb, x, **o: lb.linalg.lu_factor(x, **o),
]


@pytest.mark.parametrize("case", range(len(_OUTS)))
def test_out_gives_the_out_type(case):
    f = _OUTS[case]
    plain = f(torch, torch.tensor(SPD))
    outs = [(torch.empty(0, dtype=v.dtype), mg.empty(0, dtype=getattr(mg, str(v.dtype)[6:])))
            for v in plain]  # fmt: skip
    want = f(torch, torch.tensor(SPD), out=tuple(o[0] for o in outs))
    got = f(mg, mg.tensor(SPD), out=tuple(o[1] for o in outs))
    assert type(got).__name__ == type(want).__name__ and type(got).__name__.endswith("_out")
    assert all(g is o[1] for g, o in zip(got, outs))
    _check_values(got, want)
    assert type(got) is getattr(mg.return_types, type(want).__name__)
    assert mg.return_types.out_variant(mg.max(mg.tensor(X), 0)) is mg.return_types.max_out
    assert mg.return_types.out_variant(mg.histogramdd(mg.tensor(X), 2)).__name__ == "histogramdd"


def test_pytree_keeps_the_result_type():
    from torch.utils import _pytree as tpt

    from manygrad.utils import _pytree as mpt

    for lib, pt in ((torch, tpt), (mg, mpt)):
        r = lib.max(lib.tensor(X), 1)
        leaves, spec = pt.tree_flatten(r)
        assert len(leaves) == 2 and leaves[0] is r.values
        back = pt.tree_unflatten(leaves, spec)
        assert type(back) is type(r) and back.indices is r.indices


def test_return_types_under_the_import_hook(tmp_path):
    p = tmp_path / "script.py"
    p.write_text(
        textwrap.dedent("""
        import pickle
        import torch
        import torch.return_types
        from torch.return_types import topk
        r = torch.topk(torch.tensor([[1.0, 3.0, 2.0]]), 2)
        back = pickle.loads(pickle.dumps(r))
        result = (repr(r), type(r) is topk, type(back) is torch.return_types.topk,
                  torch.return_types.max_out.__name__, torch.return_types.topk.__module__)
    """)
    )
    text, same, same_back, out_name, module = compat.run_script(str(p), [])["result"]
    assert text == repr(torch.topk(torch.tensor([[1.0, 3.0, 2.0]]), 2))
    assert same and same_back and out_name == "max_out" and module == "manygrad.return_types"
    assert mg.dtypes.display_module == "manygrad"


# ---------------------------------------------------------------------------- inference tensors

_MSG_SAVED = "Inference tensors cannot be saved for backward"
_MSG_INPLACE = "Inplace update to inference tensor outside InferenceMode is not allowed"
_F = {torch: torch.nn.functional, mg: mg.nn.functional}

# (name, fn(lib, a, t, w, W)) with a: float inference (4, 3), t: int64 inference (4,),
# w: (4, 3) leaf requiring grad, wt: (3, 4) leaf requiring grad
_GRAPH_CASES = [
    ("mul", lambda lb, a, t, w, wt: a * w),
    ("mul, other order", lambda lb, a, t, w, wt: w * a),
    ("add", lambda lb, a, t, w, wt: a + w),
    ("sub", lambda lb, a, t, w, wt: w - a),
    ("div", lambda lb, a, t, w, wt: w / a),
    ("div by", lambda lb, a, t, w, wt: a / w),
    ("mul by a number", lambda lb, a, t, w, wt: a * 2),
    ("no grad needed", lambda lb, a, t, w, wt: a * a.clone()),
    ("matmul", lambda lb, a, t, w, wt: a @ wt),
    ("linear", lambda lb, a, t, w, wt: _F[lb].linear(a, wt.t())),
    ("linear bias", lambda lb, a, t, w, wt: _F[lb].linear(w, wt.t().detach(), a[:, 0])),
    ("pow", lambda lb, a, t, w, wt: w**a),
    ("atan2", lambda lb, a, t, w, wt: lb.atan2(w, a)),
    ("maximum", lambda lb, a, t, w, wt: lb.maximum(w, a)),
    ("cat", lambda lb, a, t, w, wt: lb.cat([w, a])),
    ("stack", lambda lb, a, t, w, wt: lb.stack([w, a])),
    ("where on a comparison", lambda lb, a, t, w, wt: lb.where(a > 0.5, w, 0.0)),
    ("addcmul", lambda lb, a, t, w, wt: lb.addcmul(w, a, a)),
    ("addcmul of w", lambda lb, a, t, w, wt: lb.addcmul(a, w, a)),
    ("lerp", lambda lb, a, t, w, wt: lb.lerp(w, a, 0.3)),
    ("view of a", lambda lb, a, t, w, wt: a.view(4, 3) * w),
    ("detach of a", lambda lb, a, t, w, wt: a.detach() * w),
    ("slice of a", lambda lb, a, t, w, wt: a[:2] * w[:2]),
    ("clone of a", lambda lb, a, t, w, wt: a.clone() * w),
    ("cast of a", lambda lb, a, t, w, wt: a.double() * w.double()),
    ("sum of a", lambda lb, a, t, w, wt: w * a.sum()),
    ("mse target", lambda lb, a, t, w, wt: _F[lb].mse_loss(w, a)),
    ("l1 target", lambda lb, a, t, w, wt: _F[lb].l1_loss(w, a)),
    ("l1 input", lambda lb, a, t, w, wt: _F[lb].l1_loss(a, w)),
    ("huber target", lambda lb, a, t, w, wt: _F[lb].huber_loss(w, a)),
    ("kl_div target", lambda lb, a, t, w, wt: _F[lb].kl_div(w, a, reduction="batchmean")),
    ("bce with logits", lambda lb, a, t, w, wt: _F[lb].binary_cross_entropy_with_logits(w, a)),
    ("cosine similarity", lambda lb, a, t, w, wt: _F[lb].cosine_similarity(w, a)),
    ("embedding", lambda lb, a, t, w, wt: _F[lb].embedding(t, w)),
    ("layer norm weight", lambda lb, a, t, w, wt: _F[lb].layer_norm(w, (3,), a[0], a[1])),
    ("einsum", lambda lb, a, t, w, wt: lb.einsum("ij,ij->i", w, a)),
    ("softmax then mul", lambda lb, a, t, w, wt: lb.softmax(w, 1) * a),
]


def _inference_inputs(lib, device=None):
    kw = {} if device is None else {"device": device}
    with lib.inference_mode():
        a = lib.tensor(np.linspace(0.1, 1.2, 12).reshape(4, 3).tolist(), **kw)
        t = lib.tensor([0, 2, 1, 0], **kw)
    w = lib.tensor(np.linspace(-1, 1, 12).reshape(4, 3).tolist(), requires_grad=True, **kw)
    wt = lib.tensor(np.linspace(-2, 2, 12).reshape(3, 4).tolist(), requires_grad=True, **kw)
    return a, t, w, wt


@pytest.mark.parametrize("case", range(len(_GRAPH_CASES)))
def test_saving_an_inference_tensor_for_backward(device, case):
    _, f = _GRAPH_CASES[case]
    try:
        want = f(torch, *_inference_inputs(torch))
    except RuntimeError as e:
        assert _MSG_SAVED in str(e)
        with pytest.raises(RuntimeError, match=_MSG_SAVED) as info:
            f(mg, *_inference_inputs(mg, device))
        assert "clone" in str(info.value) and "no_grad" in str(info.value)
        return
    got = f(mg, *_inference_inputs(mg, device))
    assert got.requires_grad == want.requires_grad and not got.is_inference()
    np.testing.assert_allclose(_np(got), _np(want), rtol=1e-5, atol=1e-6)
    if want.requires_grad:  # the graph runs: gradients as PyTorch's
        a, t, w, wt = _inference_inputs(mg, device)
        ta, tt, tw, twt = _inference_inputs(torch)
        f(mg, a, t, w, wt).sum().backward()
        f(torch, ta, tt, tw, twt).sum().backward()
        for g, gw in ((w.grad, tw.grad), (wt.grad, twt.grad)):
            assert (g is None) == (gw is None)
            if g is not None:
                np.testing.assert_allclose(_np(g), _np(gw), rtol=1e-5, atol=1e-6)


def test_no_check_without_a_graph_or_inside_inference_mode(device):
    a, _, w, wt = _inference_inputs(mg, device)
    with mg.no_grad():
        assert not (a * w).requires_grad
    with mg.inference_mode():
        assert (a * w).is_inference() and (a @ wt).is_inference()
    assert not (a * w.detach()).requires_grad


def _user_function(lib):
    class Product(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, g):
            x, y = ctx.saved_tensors
            return g * y, g * x

    class Plain(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g, g

    return Product, Plain


def test_user_function_saving_an_inference_tensor():
    for lib in (torch, mg):
        a, _, w, _ = _inference_inputs(lib)
        product, plain = _user_function(lib)
        with pytest.raises(RuntimeError, match=_MSG_SAVED):
            product.apply(w, a)
        assert plain.apply(w, a).requires_grad
        assert not product.apply(a, a).requires_grad  # no graph: nothing is saved


# (name, fn(lib, a, other)): in-place ops on an inference tensor ``a`` of shape (3, 3)
_INPLACE = [
    ("add_", lambda lb, a, o: a.add_(o)),
    ("mul_", lambda lb, a, o: a.mul_(2)),
    ("zero_", lambda lb, a, o: a.zero_()),
    ("fill_", lambda lb, a, o: a.fill_(1.0)),
    ("copy_", lambda lb, a, o: a.copy_(o)),
    ("setitem", lambda lb, a, o: a.__setitem__(0, 5.0)),
    ("iadd", lambda lb, a, o: a.__iadd__(1)),
    ("exp_", lambda lb, a, o: a.exp_()),
    ("clamp_", lambda lb, a, o: a.clamp_(0, 1)),
    ("relu_", lambda lb, a, o: lb.relu_(a)),
    ("F.relu inplace", lambda lb, a, o: _F[lb].relu(a, inplace=True)),
    ("index_add_", lambda lb, a, o: a.index_add_(0, lb.tensor([0, 2]), o[:2])),
    ("masked_fill_", lambda lb, a, o: a.masked_fill_(o > 0.5, 0.0)),
    ("scatter_", lambda lb, a, o: a.scatter_(0, lb.zeros(3, 3, dtype=lb.long), o)),
    ("uniform_", lambda lb, a, o: a.uniform_()),
    ("normal_", lambda lb, a, o: a.normal_()),
    ("t_", lambda lb, a, o: a.t_()),
    ("transpose_", lambda lb, a, o: a.transpose_(0, 1)),
    ("unsqueeze_", lambda lb, a, o: a.unsqueeze_(0)),
    ("squeeze_", lambda lb, a, o: a.squeeze_()),
    ("resize_", lambda lb, a, o: a.resize_(9)),
    ("as_strided_", lambda lb, a, o: a.as_strided_((3, 3), (3, 1))),
    ("set_", lambda lb, a, o: a.set_(o)),
    ("conj_physical_", lambda lb, a, o: a.conj_physical_()),
    ("init.zeros_", lambda lb, a, o: lb.nn.init.zeros_(a)),
    ("init.normal_", lambda lb, a, o: lb.nn.init.normal_(a)),
    ("add out=", lambda lb, a, o: lb.add(o, o, out=a)),
    ("view add_", lambda lb, a, o: a[0].add_(1)),
    ("view of detach add_", lambda lb, a, o: a.detach()[0].add_(1)),
    ("view of data add_", lambda lb, a, o: a.data.view(9).add_(1)),
]
_ALLOWED = [
    ("resize_ to its size", lambda lb, a, o: a.resize_(3, 3)),
    ("detach_", lambda lb, a, o: a.detach_()),
    ("requires_grad_(False)", lambda lb, a, o: a.requires_grad_(False)),
    ("normal tensor add_ inference", lambda lb, a, o: o.add_(a)),
    ("clone add_", lambda lb, a, o: a.clone().add_(1)),
    # NOTE: PyTorch lets detach() and .data of an inference tensor change in place
    ("detach add_", lambda lb, a, o: a.detach().add_(1)),
    ("data add_", lambda lb, a, o: a.data.add_(1)),
    ("detach t_", lambda lb, a, o: a.detach().t_()),
    ("detach detach zero_", lambda lb, a, o: a.detach().detach().zero_()),
]


def _inference_square(lib, device=None):
    kw = {} if device is None else {"device": device}
    with lib.inference_mode():
        a = lib.tensor([[0.1, 0.9, 0.4], [0.7, 0.2, 0.6], [0.3, 0.8, 0.5]], **kw)
    return a, lib.tensor([[0.5, 0.6, 0.1], [0.2, 0.9, 0.3], [0.4, 0.4, 0.7]], **kw)


@pytest.mark.parametrize("case", range(len(_INPLACE)))
def test_inplace_update_of_an_inference_tensor(device, case):
    _, f = _INPLACE[case]
    for mode in ("plain", "no_grad", "inference_mode(False)"):
        err = _both_raise(lambda m=mode: _under(m, torch, f, *_inference_square(torch)),
                          lambda m=mode: _under(m, mg, f, *_inference_square(mg, device)))  # fmt: skip
        assert _MSG_INPLACE in str(err) and "clone" in str(err)
    a, o = _inference_square(mg, device)
    with mg.inference_mode():  # inside the block it is allowed, as in PyTorch
        f(mg, a, o)


def _under(mode, lib, f, a, o):
    if mode == "no_grad":
        with lib.no_grad():
            return f(lib, a, o)
    if mode == "inference_mode(False)":
        with lib.inference_mode(), lib.inference_mode(False):
            return f(lib, a, o)
    return f(lib, a, o)


@pytest.mark.parametrize("case", range(len(_ALLOWED)))
def test_inplace_ops_that_stay_allowed(device, case):
    _, f = _ALLOWED[case]
    f(torch, *_inference_square(torch))
    f(mg, *_inference_square(mg, device))


def test_requires_grad_and_parameters_of_inference_tensors():
    for lib in (torch, mg):
        a, _ = _inference_square(lib)
        with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor"):
            a.requires_grad_()
        with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor"):
            lib.nn.Parameter(a)
        with pytest.raises(RuntimeError, match="Setting requires_grad=True on inference tensor"):
            a.detach().requires_grad_()
        with pytest.raises(RuntimeError, match=_MSG_SAVED):
            a.data * lib.ones(3, requires_grad=True)
        assert not lib.nn.Parameter(a, requires_grad=False).requires_grad
        n = lib.ones(2)
        with lib.inference_mode():
            p = lib.nn.Parameter(a)
            assert p.requires_grad and p.is_inference()
            assert lib.nn.Parameter(lib.zeros(2)).is_inference()
            assert not lib.nn.Parameter(n).is_inference()


def test_model_made_under_inference_mode():
    got = []
    for lib in (torch, mg):
        lib.manual_seed(0)
        with lib.inference_mode():
            m = lib.nn.Linear(3, 2)
        x = lib.ones(4, 3)
        out = m(x)  # the weights need no saving: the input does not require grad
        opt = lib.optim.SGD(m.parameters(), lr=0.1)
        out.sum().backward()
        with pytest.raises(RuntimeError, match=_MSG_INPLACE):
            opt.step()
        with pytest.raises(RuntimeError, match=_MSG_SAVED):
            m(lib.ones(4, 3, requires_grad=True))
        got.append([m.weight.is_inference(), m.weight.requires_grad, out.requires_grad,
                    m.bias.grad is not None])  # fmt: skip
    assert got[0] == got[1] == [True, True, True, True]


def test_views_of_inference_tensors_are_inference_tensors(device):
    for lib, kw in ((torch, {}), (mg, {"device": device})):
        n = lib.ones(2, 3, **kw)
        with lib.inference_mode():
            a = lib.ones(2, 3, **kw)
            inside = [n.detach(), n.data, n[0], n.view(6)]
        views = [a.detach(), a.data, a[0], a.t(), a.view(6), a.reshape(3, 2), a.expand(2, 2, 3),
                 a.contiguous(), a.to(a.dtype), lib.as_tensor(a)]  # fmt: skip
        copies = [a.clone(), a + 0, a.to(lib.float64), lib.tensor(_np(a))]
        assert all(v.is_inference() for v in views), lib
        assert not any(v.is_inference() for v in copies + inside), lib


# ---------------------------------------------------------------------------- sparse COO

IDX = [[0, 1, 1, 0], [2, 0, 2, 2]]  # (0, 2) twice: uncoalesced
VALS = [0.3, 0.4, 0.5, 0.1]


def _sp(lib, vals=VALS, idx=IDX, size=(2, 3), device=None, dtype=None, coalesce=False):
    kw = {} if device is None else {"device": device}
    v = lib.tensor(vals, **kw) if dtype is None else lib.tensor(vals, dtype=dtype, **kw)
    s = lib.sparse_coo_tensor(lib.tensor(idx, **kw), v, size)
    return s.coalesce() if coalesce else s


def _same_sparse(got, want, flag=True):
    assert got.is_sparse and want.is_sparse
    assert tuple(got.shape) == tuple(want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    if flag:
        assert got.is_coalesced() == want.is_coalesced()
    np.testing.assert_allclose(_np(got.to_dense()), _np(want.to_dense()), rtol=1e-6, atol=1e-7)


_UNARY = sorted(
    "abs absolute arcsin arcsinh arctan arctanh asin asinh atan atanh ceil deg2rad erf erfinv "
    "expm1 fix floor frac isinf isnan isneginf isposinf log1p nan_to_num rad2deg relu round "
    "sgn sign signbit sin sinh sqrt square tan tanh trunc neg negative".split()
)


@pytest.mark.parametrize("name", _UNARY)
@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("coalesce", [False, True])
def test_sparse_unary_function_forms(device, name, dtype, coalesce):
    vals = [3, 4, 5, 1] if dtype == "int64" else [0.3, -0.4, 0.5, 0.1]
    t = _sp(torch, vals, dtype=getattr(torch, dtype), coalesce=coalesce)
    m = _sp(mg, vals, dtype=getattr(mg, dtype), device=device, coalesce=coalesce)
    if name == "frac" and dtype == "int64":
        return  # NOTE: PyTorch's frac refuses integers; manygrad's gives 0 (dense too)
    try:
        want = getattr(torch, name)(t)
    except (RuntimeError, NotImplementedError) as e:
        with pytest.raises(type(e)):
            getattr(mg, name)(m)
        return
    _same_sparse(getattr(mg, name)(m), want)
    if hasattr(t, name):
        _same_sparse(getattr(m, name)(), getattr(t, name)())
    if name in ("relu", "sqrt", "abs", "neg", "tanh"):
        _same_sparse(getattr(mg.nn.functional, name, getattr(mg, name))(m), want)


@pytest.mark.parametrize("name", ["exp", "cos", "sigmoid", "log", "cosh", "reciprocal"])
def test_sparse_functions_that_would_be_dense_are_refused(device, name):
    err = _both_raise(lambda: getattr(torch, name)(_sp(torch)),
                      lambda: getattr(mg, name)(_sp(mg, device=device)), NotImplementedError)  # fmt: skip
    assert "sparse" in str(err) and "to_dense" in str(err)


_D = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
_S2 = ([[1, 0], [2, 2]], [7.0, 2.0])
# fn(lib, s, s2, d): s uncoalesced float, s2 another sparse (2, 3), d dense (2, 3)
_BINARY = [
    ("mul number", lambda lb, s, s2, d: lb.mul(s, 2)),
    ("number mul", lambda lb, s, s2, d: lb.mul(2, s)),
    ("mul 0-d", lambda lb, s, s2, d: lb.mul(s, lb.tensor(2.0, device=d.device))),
    ("multiply", lambda lb, s, s2, d: lb.multiply(s, 3)),
    ("mul sparse", lambda lb, s, s2, d: lb.mul(s, s2)),
    ("mul dense", lambda lb, s, s2, d: lb.mul(s, d)),
    ("dense mul", lambda lb, s, s2, d: lb.mul(d, s)),
    ("dense * sparse", lambda lb, s, s2, d: d * s),
    ("mul broadcast", lambda lb, s, s2, d: lb.mul(d[0], s)),
    ("mul coalesced", lambda lb, s, s2, d: lb.mul(s.coalesce(), s2.coalesce())),
    ("div number", lambda lb, s, s2, d: lb.div(s, 2)),
    ("div 0-d", lambda lb, s, s2, d: lb.div(s, lb.tensor(4.0, device=d.device))),
    ("true_divide", lambda lb, s, s2, d: lb.true_divide(s, 2)),
    ("divide floor", lambda lb, s, s2, d: lb.divide(s * 10, 3, rounding_mode="floor")),
    ("div trunc", lambda lb, s, s2, d: lb.div(s * -10, 3, rounding_mode="trunc")),
    ("sparse / number", lambda lb, s, s2, d: s / 4),
    ("add sparse", lambda lb, s, s2, d: lb.add(s, s2)),
    ("add alpha", lambda lb, s, s2, d: lb.add(s, s2, alpha=2)),
    ("add coalesced", lambda lb, s, s2, d: lb.add(s.coalesce(), s2.coalesce())),
    ("sparse + sparse", lambda lb, s, s2, d: s + s2),
    ("add dense sparse", lambda lb, s, s2, d: lb.add(d, s)),
    ("add dense sparse alpha", lambda lb, s, s2, d: lb.add(d, s, alpha=-2)),
    ("dense + sparse", lambda lb, s, s2, d: d + s),
    ("sub sparse", lambda lb, s, s2, d: lb.sub(s, s2)),
    ("subtract alpha", lambda lb, s, s2, d: lb.subtract(s, s2, alpha=3)),
    ("sub dense sparse", lambda lb, s, s2, d: lb.sub(d, s)),
    ("dense - sparse", lambda lb, s, s2, d: d - s),
    ("sparse - sparse", lambda lb, s, s2, d: s - s2),
    ("pow", lambda lb, s, s2, d: lb.pow(s, 2)),
    ("pow negative", lambda lb, s, s2, d: lb.pow(s, -1)),
    ("pow float", lambda lb, s, s2, d: lb.pow(s, 0.5)),
    ("sparse ** 3", lambda lb, s, s2, d: s**3),
    ("method pow", lambda lb, s, s2, d: s.pow(2)),
    ("method add", lambda lb, s, s2, d: s.add(s2, alpha=2)),
    ("method div", lambda lb, s, s2, d: s.div(2)),
]
_BINARY_ERRORS = [
    ("div sparse", lambda lb, s, s2, d: lb.div(s, s2), RuntimeError, "scalar or zero-dim"),
    ("div dense", lambda lb, s, s2, d: lb.div(s, d), RuntimeError, "scalar or zero-dim"),
    ("div of dense", lambda lb, s, s2, d: lb.div(d, s), RuntimeError, "scalar or zero-dim"),
    ("div of number", lambda lb, s, s2, d: lb.div(2, s), RuntimeError, "scalar or zero-dim"),
    ("add sparse dense", lambda lb, s, s2, d: lb.add(s, d), RuntimeError, "add\\(dense, sparse\\)"),
    ("sparse + dense", lambda lb, s, s2, d: s + d, RuntimeError, "add\\(dense, sparse\\)"),
    ("sparse + number", lambda lb, s, s2, d: s + 1, RuntimeError, "add\\(dense, sparse\\)"),
    ("sub sparse dense", lambda lb, s, s2, d: lb.sub(s, d), RuntimeError, "add\\(dense, sparse\\)"),
    ("add broadcast", lambda lb, s, s2, d: lb.add(d[0], s), RuntimeError, "same size"),
    ("add sizes", lambda lb, s, s2, d: lb.add(s, s2.coalesce().t()), RuntimeError, "match"),
    ("pow 0", lambda lb, s, s2, d: lb.pow(s, 0), RuntimeError, "zeroth power"),
    ("pow 0.0", lambda lb, s, s2, d: s.pow(0.0), RuntimeError, "zeroth power"),
    ("pow tensor", lambda lb, s, s2, d: lb.pow(s, d), NotImplementedError, ""),
    ("pow of number", lambda lb, s, s2, d: lb.pow(2, s), NotImplementedError, ""),
]


def _binary_inputs(lib, device=None):
    kw = {} if device is None else {"device": device}
    s2 = lib.sparse_coo_tensor(lib.tensor(_S2[0], **kw), lib.tensor(_S2[1], **kw), (2, 3))
    return _sp(lib, device=device), s2, lib.tensor(_D, **kw)


@pytest.mark.parametrize("case", range(len(_BINARY)))
def test_sparse_binary_function_forms(device, case):
    _, f = _BINARY[case]
    want = f(torch, *_binary_inputs(torch))
    got = f(mg, *_binary_inputs(mg, device))
    if want.is_sparse:
        _same_sparse(got, want)
    else:
        assert not got.is_sparse and got.dtype == mg.float32
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)


@pytest.mark.parametrize("case", range(len(_BINARY_ERRORS)))
def test_sparse_binary_errors(device, case):
    _, f, exc, msg = _BINARY_ERRORS[case]
    err = _both_raise(lambda: f(torch, *_binary_inputs(torch)),
                      lambda: f(mg, *_binary_inputs(mg, device)), exc)  # fmt: skip
    assert msg in str(err) or msg.replace("\\", "") in str(err)


def test_sparse_integer_division_and_powers(device):
    t, m = _sp(torch, [3, 4, 5, 1]), _sp(mg, [3, 4, 5, 1], device=device)
    for f in (lambda lb, s: lb.div(s, 2), lambda lb, s: lb.div(s, 2, rounding_mode="floor"),
              lambda lb, s: lb.pow(s, 2), lambda lb, s: lb.mul(s, 2.5)):  # fmt: skip
        _same_sparse(f(mg, m), f(torch, t))
    _both_raise(lambda: torch.pow(t, 0.5), lambda: mg.pow(m, 0.5))
    _both_raise(lambda: torch.pow(t, -1), lambda: mg.pow(m, -1))


# (tensors as (idx, vals, size), dim)
_CATS = [
    ([(IDX, VALS, (2, 3)), (_S2[0], _S2[1], (2, 3))], 0),
    ([(IDX, VALS, (2, 3)), (_S2[0], _S2[1], (2, 3))], 1),
    ([(IDX, VALS, (2, 3)), (_S2[0], _S2[1], (2, 3))], -1),
    ([(IDX, VALS, (2, 3)), ([[0], [3]], [9.0], (2, 4)), (_S2[0], _S2[1], (2, 3))], 1),
    ([(IDX, VALS, (2, 3))], 0),
    ([([[0, 2]], [[1.0, 2.0], [3.0, 4.0]], (3, 2)), ([[1]], [[5.0, 6.0]], (3, 2))], 0),
    ([([[0, 2]], [[1.0, 2.0], [3.0, 4.0]], (3, 2)), ([[1]], [[5.0, 6.0, 7.0]], (3, 3))], 1),
]


@pytest.mark.parametrize("case", range(len(_CATS)))
def test_sparse_cat(device, case):
    parts, dim = _CATS[case]
    want = torch.cat([_sp(torch, v, i, s) for i, v, s in parts], dim)
    for fn in ("cat", "concat", "concatenate"):
        got = getattr(mg, fn)([_sp(mg, v, i, s, device=device) for i, v, s in parts], dim)
        _same_sparse(got, want)
        assert got._nnz() == want._nnz()
    got = mg.cat(tuple(_sp(mg, v, i, s, device=device) for i, v, s in parts), dim=dim)
    _same_sparse(got, want)


def test_sparse_cat_promotes_and_gives_the_values_gradients(device):
    t_v = torch.tensor(VALS, requires_grad=True)
    m_v = mg.tensor(VALS, requires_grad=True, device=device)
    ti = torch.tensor(IDX)
    t_parts = [torch.sparse_coo_tensor(ti, t_v, (2, 3)), _sp(torch, [1, 2], _S2[0])]
    m_parts = [mg.sparse_coo_tensor(mg.tensor(IDX, device=device), m_v, (2, 3)),
               _sp(mg, [1, 2], _S2[0], device=device)]  # fmt: skip
    for dim in (0, 1):
        want = torch.cat(t_parts, dim)
        got = mg.cat(m_parts, dim)
        _same_sparse(got, want)
        assert got.requires_grad
    w = np.arange(12.0).reshape(2, 6)
    (torch.cat([p.to_dense() for p in t_parts], 1) * torch.tensor(w)).sum().backward()
    (mg.cat(m_parts, 1).to_dense() * mg.tensor(w, device=device)).sum().backward()
    np.testing.assert_allclose(_np(m_v.grad), _np(t_v.grad), rtol=1e-6)


_CAT_ERRORS = [
    (lambda lb, d: [_sp(lb, device=d), lb.ones(2, 3, device=d)], 0, RuntimeError,
     "dense tensor was found at position 1"),
    (lambda lb, d: [_sp(lb, device=d), _sp(lb, [1.0], [[0], [0]], (3, 3), device=d)], 1,
     RuntimeError, "same shape"),
    (lambda lb, d: [_sp(lb, device=d), _sp(lb, device=d)], 2, IndexError,
     "Dimension out of range"),
    (lambda lb, d: [_sp(lb, device=d), _sp(lb, [[1.0, 2.0, 3.0]], [[1]], (2, 3), device=d)], 0,
     RuntimeError, "same sparse_dim and dense_dim"),
]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_CAT_ERRORS)))
def test_sparse_cat_errors(device, case):
    f, dim, exc, msg = _CAT_ERRORS[case]
    err = _both_raise(
        lambda: torch.cat(f(torch, "cpu"), dim), lambda: mg.cat(f(mg, device), dim), exc
    )
    assert msg in str(err)
    with pytest.raises(NotImplementedError):  # a dense tensor first, as PyTorch
        mg.cat([mg.ones(2, 3, device=device), _sp(mg, device=device)])


_NARROWS = [(1, 1, 2), (0, 1, 1), (0, 0, 2), (1, 0, 0), (1, 2, 1), (1, 0, 3)]


@pytest.mark.parametrize("dim,start,length", _NARROWS)
@pytest.mark.parametrize("coalesce", [False, True])
def test_sparse_narrow_copy(device, dim, start, length, coalesce):
    t = _sp(torch, coalesce=coalesce)
    m = _sp(mg, device=device, coalesce=coalesce)
    want = torch.narrow_copy(t, dim, start, length)
    flag = want._nnz() > 1  # NOTE: manygrad marks 0 or 1 entries coalesced, as its constructor
    _same_sparse(mg.narrow_copy(m, dim, start, length), want, flag)
    _same_sparse(m.narrow_copy(dim, start, length), t.narrow_copy(dim, start, length), flag)
    assert mg.narrow_copy(m, dim, start, length)._nnz() == want._nnz()


def test_sparse_narrow_copy_of_a_dense_dim_and_gradients(device):
    hy = ([[0, 2]], [[1.0, 2.0], [3.0, 4.0]], (3, 2))
    for args in ((1, 1, 1), (0, 1, 2), (1, 0, 2)):
        want = _sp(torch, hy[1], hy[0], hy[2]).narrow_copy(*args)
        _same_sparse(_sp(mg, hy[1], hy[0], hy[2], device=device).narrow_copy(*args), want,
                     want._nnz() > 1)  # fmt: skip
    t_v = torch.tensor(VALS, requires_grad=True)
    m_v = mg.tensor(VALS, requires_grad=True, device=device)
    w = np.arange(4.0).reshape(2, 2) + 1
    (torch.sparse_coo_tensor(torch.tensor(IDX), t_v, (2, 3)).to_dense().narrow(1, 1, 2)
     * torch.tensor(w)).sum().backward()  # fmt: skip
    s = mg.sparse_coo_tensor(mg.tensor(IDX, device=device), m_v, (2, 3))
    (mg.narrow_copy(s, 1, 1, 2).to_dense() * mg.tensor(w, device=device)).sum().backward()
    np.testing.assert_allclose(_np(m_v.grad), _np(t_v.grad), rtol=1e-6)


_NARROW_ERRORS = [((-1, 0, 2), "Dimension -1 out of range"), ((2, 0, 1), "Dimension 2 out of range"),
                  ((1, 2, 2), "Invalid range to narrow"), ((1, -1, 1), "Invalid range to narrow"),
                  ((1, 0, -1), "length must be non-negative")]  # fmt: skip


@pytest.mark.parametrize("case", range(len(_NARROW_ERRORS)))
def test_sparse_narrow_copy_errors(device, case):
    args, msg = _NARROW_ERRORS[case]
    err = _both_raise(lambda: torch.narrow_copy(_sp(torch), *args),
                      lambda: mg.narrow_copy(_sp(mg, device=device), *args))  # fmt: skip
    assert msg in str(err)


@pytest.mark.parametrize("name", ["sqrt", "abs", "neg", "tanh", "square", "mul", "div", "pow"])
def test_sparse_elementwise_gradients_reach_the_values(device, name):
    """Gradients of the stored values, against PyTorch's through the dense form (the
    coalesced entries are the nonzero positions)."""
    vals = [0.3, 0.4, 0.5, 0.1]
    t_v = torch.tensor(vals, requires_grad=True)
    m_v = mg.tensor(vals, requires_grad=True, device=device)
    fns = {"mul": lambda lb, x: lb.mul(x, 3.0), "div": lambda lb, x: lb.div(x, 4.0),
           "pow": lambda lb, x: lb.pow(x, 3)}  # fmt: skip
    f = fns.get(name, lambda lb, x: getattr(lb, name)(x))
    dense = torch.sparse_coo_tensor(torch.tensor(IDX), t_v, (2, 3)).to_dense()
    f(torch, dense[dense != 0]).sum().backward()
    out = f(mg, mg.sparse_coo_tensor(mg.tensor(IDX, device=device), m_v, (2, 3)))
    mg.sparse.sum(out).backward()
    np.testing.assert_allclose(_np(m_v.grad), _np(t_v.grad), rtol=1e-5)
    assert math.isfinite(float(m_v.grad.sum()))


def test_sparse_methods_match_the_functions():
    t, m = _sp(torch), _sp(mg)
    for name in ("sqrt", "abs", "neg", "negative", "sin", "relu", "square", "floor", "sign"):
        _same_sparse(getattr(m, name)(), getattr(t, name)())
    _same_sparse(m.multiply(2), t.multiply(2))
    _same_sparse(m.subtract(m, alpha=2), t.subtract(t, alpha=2))
    _same_sparse(m.divide(2), t.divide(2))
    _same_sparse(m.true_divide(2), t.true_divide(2))
    _same_sparse(-m, -t)
    _same_sparse(2 * m, 2 * t)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same_sparse(mg.negative(m), torch.negative(t))


_METHOD_FORMS = [
    lambda lb, s: lb.sum(s),
    lambda lb, s: lb.sum(s, 1),
    lambda lb, s: lb.sum(s, (0, 1)),
    lambda lb, s: lb.sum(s, dtype=lb.float64),
    lambda lb, s: lb.index_select(s, 1, lb.tensor([2, 0], device=s.device)),
]


@pytest.mark.parametrize("case", range(len(_METHOD_FORMS)))
def test_sparse_function_forms_of_other_methods(device, case):
    want = _METHOD_FORMS[case](torch, _sp(torch))
    got = _METHOD_FORMS[case](mg, _sp(mg, device=device))
    if want.is_sparse:
        _same_sparse(got, want, flag=False)
    else:
        assert not got.is_sparse and str(got.dtype)[9:] == str(want.dtype)[6:]
        np.testing.assert_allclose(_np(got), _np(want), rtol=1e-6)

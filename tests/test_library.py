"""Custom operators (``torch.library``) and ``torch.ops``, against PyTorch's behaviour."""

import itertools
import textwrap

import numpy as np
import pytest

import manygrad as mg
from manygrad import library
from parity_helpers import run_both

torch = pytest.importorskip("torch")

_names = itertools.count()


def _ns():
    return f"mgtest{next(_names)}"


def _scale_op(lib, ns):
    @lib.library.custom_op(f"{ns}::scale", mutates_args=())
    def scale(x: lib.Tensor, s: float = 2.0) -> lib.Tensor:
        return x * s

    return scale


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_kernel_runs_outside_the_graph_and_backward_needs_a_formula(lib):
    t = torch if lib == "torch" else mg
    scale = _scale_op(t, _ns())
    a = t.tensor([1.0, 2.0], requires_grad=True)
    y = scale(a, 3.0)
    assert y.requires_grad and y.tolist() == [3.0, 6.0]
    with pytest.raises(RuntimeError, match="register_autograd"):
        y.sum().backward()

    def backward(ctx, g):
        return g * ctx.s, None

    def setup_context(ctx, inputs, output):
        ctx.s = inputs[1]

    scale.register_autograd(backward, setup_context=setup_context)
    a = t.tensor([1.0, 2.0], requires_grad=True)
    scale(a, 3.0).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_outputs_may_not_alias_inputs(lib):
    t = torch if lib == "torch" else mg
    ns = _ns()

    @t.library.custom_op(f"{ns}::ident", mutates_args=())
    def ident(x: t.Tensor) -> t.Tensor:
        return x

    @t.library.custom_op(f"{ns}::row", mutates_args=())
    def row(x: t.Tensor) -> t.Tensor:
        return x[0]

    for op in (ident, row):
        with pytest.raises(RuntimeError, match="may not alias"):
            op(t.ones(2, 2))


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_mutated_arguments_get_a_new_version(lib):
    t = torch if lib == "torch" else mg

    @t.library.custom_op(f"{_ns()}::fill", mutates_args={"out"})
    def fill(x: t.Tensor, out: t.Tensor) -> None:
        out.copy_(x + 1)

    out = t.zeros(3)
    v0 = out._version
    assert fill(t.ones(3), out) is None
    assert out.tolist() == [2.0, 2.0, 2.0] and out._version - v0 == 2


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_fake_implementation_serves_meta_tensors(lib):
    t = torch if lib == "torch" else mg
    scale = _scale_op(t, _ns())
    with pytest.raises(RuntimeError, match="no fake impl registered"):
        scale(t.empty(4, device="meta"))
    scale.register_fake(lambda x, s=2.0: t.empty_like(x))
    out = scale(t.empty(4, 5, device="meta"))
    assert out.device.type == "meta" and tuple(out.shape) == (4, 5)


def test_device_kernels_and_missing_ones():
    ns = _ns()
    calls = []

    @mg.library.custom_op(f"{ns}::f", mutates_args=(), device_types="cpu")
    def f(x: mg.Tensor) -> mg.Tensor:
        calls.append("cpu")
        return x + 1

    assert f(mg.ones(2)).tolist() == [2.0, 2.0] and calls == ["cpu"]
    with pytest.raises(NotImplementedError, match="no kernel for device 'fakegpu'"):
        f(mg.ones(2, device="fakegpu"))

    @f.register_kernel("fakegpu")
    def _(x):
        calls.append("fakegpu")
        return x + 2

    assert f(mg.ones(2, device="fakegpu")).tolist() == [3.0, 3.0] and calls[-1] == "fakegpu"


def test_several_outputs_with_a_formula_match_pytorch():
    def run(t):
        @t.library.custom_op(f"{_ns()}::two", mutates_args=())
        def two(x: t.Tensor) -> tuple[t.Tensor, t.Tensor]:
            return x.sin(), x * x

        two.register_autograd(
            lambda ctx, g1, g2: g1 * ctx.saved_tensors[0].cos() + 2 * g2 * ctx.saved_tensors[0],
            setup_context=lambda ctx, inputs, output: ctx.save_for_backward(inputs[0]),
        )
        x = t.tensor([0.3, -1.2, 2.0], requires_grad=True)
        u, v = two(x)
        (u.sum() + (v * 3).sum()).backward()
        return u.detach().numpy(), v.detach().numpy(), x.grad.numpy()

    for a, b in zip(run(mg), run(torch)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_declaration_errors(lib):
    t = torch if lib == "torch" else mg
    with pytest.raises(ValueError):
        t.library.custom_op("noname", mutates_args=())(lambda x: x)
    with pytest.raises(ValueError, match="must have a type annotation"):

        @t.library.custom_op(f"{_ns()}::f", mutates_args=())
        def f(x):
            return x


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_infer_schema_as_pytorch(lib):
    t = torch if lib == "torch" else mg

    def f(a: t.Tensor, out: t.Tensor, b: list[int], c: t.Tensor | None = None, *,
          k: int = 3, m: str = "x") -> t.Tensor: ...  # fmt: skip

    assert t.library.infer_schema(f, mutates_args={"out"}) == (
        '(Tensor a, Tensor(a1!) out, SymInt[] b, Tensor? c=None, *, SymInt k=3, str m="x") '
        "-> Tensor"
    )


@pytest.mark.parametrize("lib", ["torch", "mg"])
def test_library_with_schema_strings(lib):
    t = torch if lib == "torch" else mg
    ns = _ns()
    lib_ = t.library.Library(ns, "DEF")
    lib_.define("sq(Tensor x, *, float alpha=1.0) -> Tensor")
    lib_.impl("sq", lambda x, alpha=1.0: x * x * alpha, "CPU")
    ops = torch.ops if lib == "torch" else mg.library.ops
    assert getattr(ops, ns).sq(t.tensor([3.0]), alpha=2.0).tolist() == [18.0]
    assert getattr(ops, ns).sq.default(t.tensor([2.0])).tolist() == [4.0]
    assert str(getattr(ops, ns).sq.default) == f"{ns}.sq.default"
    assert repr(getattr(ops, ns).sq) == f"<OpOverloadPacket(op='{ns}.sq')>"
    with pytest.raises(RuntimeError, match="single TORCH_LIBRARY"):
        t.library.Library(ns, "DEF")
    frag = t.library.Library(ns, "FRAGMENT")
    frag.define("cube(Tensor x) -> Tensor")
    frag.impl("cube", lambda x: x * x * x, "CompositeImplicitAutograd")
    x = t.tensor([2.0], requires_grad=True)
    getattr(ops, ns).cube(x).sum().backward()  # autograd sees inside a composite kernel
    assert x.grad.tolist() == [12.0]
    with pytest.raises(AttributeError):
        getattr(ops, ns).nothing_here  # noqa: B018


def test_opcheck_finds_wrong_registrations():
    ns = _ns()

    @mg.library.custom_op(f"{ns}::f", mutates_args=())
    def f(x: mg.Tensor) -> mg.Tensor:
        return x.sum(0)

    f.register_fake(lambda x: mg.empty_like(x))  # wrong: the kernel drops dim 0
    res = mg.library.opcheck(f, (mg.ones(3, 2),), raise_exception=False)
    assert res["test_schema"] == "SUCCESS" and "shape" in str(res["test_faketensor"])
    f.register_fake(lambda x: x.new_empty(x.shape[1:]))
    assert mg.library.opcheck(f, (mg.ones(3, 2),))["test_faketensor"] == "SUCCESS"
    with pytest.raises(library.OpCheckError, match="autograd"):
        mg.library.opcheck(f, (mg.ones(3, 2, requires_grad=True),))

    @mg.library.custom_op(f"{ns}::sneaky", mutates_args=())
    def sneaky(x: mg.Tensor) -> mg.Tensor:
        x.add_(1)
        return x + 1

    with pytest.raises(library.OpCheckError, match="mutates_args"):
        mg.library.opcheck(sneaky, (mg.ones(2),))


def test_aten_functions_through_torch_ops():
    assert mg.library.ops.aten.relu.default(mg.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert mg.library.ops.aten.sum.dim_IntList(mg.ones(2, 3), [1]).tolist() == [3.0, 3.0]
    with pytest.raises(AttributeError, match="no function"):
        mg.library.ops.aten.not_an_op  # noqa: B018


def test_a_pytorch_program_with_custom_ops_runs_unchanged(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(
        textwrap.dedent(
            """
            import torch

            @torch.library.custom_op("prog::gelu2", mutates_args=())
            def gelu2(x: torch.Tensor) -> torch.Tensor:
                return torch.nn.functional.gelu(x) * 2

            @gelu2.register_fake
            def _(x):
                return torch.empty_like(x)

            def bw(ctx, g):
                (x,) = ctx.saved_tensors
                x = x.detach().requires_grad_()
                with torch.enable_grad():
                    y = torch.nn.functional.gelu(x) * 2
                return torch.autograd.grad(y, x, g)[0]

            gelu2.register_autograd(bw, setup_context=lambda ctx, inputs, output: ctx.save_for_backward(inputs[0]))
            x = torch.linspace(-2, 2, 5, requires_grad=True)
            torch.ops.prog.gelu2(x).sum().backward()
            print([round(v, 5) for v in x.grad.tolist()])
            print(torch.library.opcheck(gelu2, (torch.randn(3),))["test_faketensor"])
            """
        )
    )
    out = run_both(script)
    assert out["mg"] == out["torch"]

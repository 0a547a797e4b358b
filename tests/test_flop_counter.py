"""FlopCounterMode: the flops of a forward and a backward equal PyTorch's, in total and per
module, for matrix products, convolutions and attention."""

import warnings

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode as TorchFlops

import manygrad as mg
from manygrad.utils import flop_counter as fc
from manygrad.utils.flop_counter import FlopCounterMode


def _counts(mode_cls, fn, **kw):
    mode = mode_cls(display=False, **kw)
    with mode:
        fn()
    counts = {m: {str(op): v for op, v in ops.items()} for m, ops in mode.get_flop_counts().items()}
    return mode.get_total_flops(), counts


def _per_module(counts):
    return {m: sum(ops.values()) for m, ops in counts.items()}


def check(build, inputs, device="cpu", backward=True, same_ops=True):
    """Run ``build(lib)(*inputs)`` in PyTorch and in manygrad under each counter (then a
    backward of its sum) and compare the counts: total, per module and (``same_ops``) per
    op."""

    def run(lib, mode_cls, dev):
        model = build(lib)
        if isinstance(model, lib.nn.Module):
            model = model.to(dev)
        xs = [lib.randn(*s, device=dev).requires_grad_(g) for s, g in inputs]

        def step():
            out = model(*xs)
            if backward:
                out.float().sum().backward()

        if lib is not torch:
            return _counts(mode_cls, step)
        # NOTE: PyTorch's CPU flash kernel is missing from its flop table (it counts 0);
        # its math kernel counts the products that PyTorch's GPU kernels count
        with sdpa_kernel(SDPBackend.MATH):
            return _counts(mode_cls, step)

    want = run(torch, TorchFlops, "cpu")
    got = run(mg, FlopCounterMode, device)
    assert got[0] == want[0] and want[0] > 0
    assert _per_module(got[1]) == _per_module(want[1])
    if same_ops:
        assert got[1] == want[1]
    return got


# ---------------------------------------------------------------- single ops

MATMULS = [  # (a shape, a needs grad), (b shape, b needs grad)
    [((4, 6), True), ((6, 3), True)],
    [((4, 6), False), ((6, 3), True)],
    [((6,), True), ((6, 3), True)],
    [((4, 6), True), ((6,), True)],
    [((2, 4, 6), True), ((6, 3), False)],
    [((4, 6), False), ((2, 6, 3), True)],
    [((3, 1, 4, 6), True), ((2, 6, 5), True)],
]


@pytest.mark.parametrize("inputs", MATMULS, ids=str)
def test_matmul(inputs):
    def build(lib):
        return lambda a, b: lib.matmul(a, b)

    if inputs[1][0] == (6,):  # a matrix-vector product: 0 in both
        got = _counts(FlopCounterMode, lambda: mg.randn(4, 6) @ mg.randn(6))
        want = _counts(TorchFlops, lambda: torch.randn(4, 6) @ torch.randn(6))
        assert got == want
        return
    check(build, inputs)


@pytest.mark.parametrize("op", ["mm", "bmm", "addmm", "baddbmm"])
def test_mm_family_totals(op):
    shapes = {
        "mm": [((5, 4), True), ((4, 3), True)],
        "bmm": [((2, 5, 4), True), ((2, 4, 3), False)],
        "addmm": [((3,), True), ((5, 4), True), ((4, 3), True)],
        "baddbmm": [((2, 5, 3), True), ((2, 5, 4), False), ((2, 4, 3), True)],
    }[op]

    def build(lib):
        return getattr(lib, op)

    # NOTE: manygrad's addmm/baddbmm count under aten.mm/aten.bmm: the totals agree
    check(build, shapes, same_ops=op in ("mm", "bmm"))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 6), (2, 4, 6), (6,)])
def test_linear(bias, shape):
    def build(lib):
        return lib.nn.Linear(6, 5, bias=bias)

    check(build, [(shape, True)])
    check(build, [(shape, False)])


CONVS = [  # (module, args, input shape)
    ("Conv1d", (3, 4, 3), {"stride": 2, "padding": 1}, (2, 3, 9)),
    ("Conv2d", (4, 6, 3), {"groups": 2, "padding": 1}, (2, 4, 6, 6)),
    ("Conv2d", (3, 4, 3), {}, (3, 7, 7)),
    ("Conv3d", (2, 3, 3), {"stride": (1, 2, 2)}, (1, 2, 5, 6, 6)),
    ("ConvTranspose1d", (3, 2, 3), {}, (2, 3, 5)),
    ("ConvTranspose2d", (4, 2, 3), {"stride": 2, "output_padding": 1}, (2, 4, 4, 4)),
    ("ConvTranspose2d", (4, 6, 3), {"groups": 2}, (1, 4, 5, 5)),
    ("ConvTranspose3d", (2, 3, 2), {"stride": 2}, (1, 2, 3, 3, 3)),
]


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: f"{c[0]}{c[3]}")
@pytest.mark.parametrize("input_grad", [True, False])
def test_convolutions(conv, input_grad):
    name, args, kw, shape = conv

    def build(lib):
        return getattr(lib.nn, name)(*args, **kw)

    check(build, [(shape, input_grad)])


SDPA = [  # q, k, v shapes and which need a gradient, keyword arguments
    ((2, 3, 5, 8), (2, 3, 5, 8), (2, 3, 5, 8), (True, True, True), {"is_causal": True}),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), (True, True, True), {}),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), (False, True, True), {}),
    ((2, 3, 5, 8), (2, 3, 7, 8), (2, 3, 7, 4), (True, True, False), {"scale": 0.3}),
    ((2, 4, 5, 8), (2, 2, 7, 8), (2, 2, 7, 6), (True, True, True), {"enable_gqa": True}),
    ((3, 5, 8), (3, 7, 8), (3, 7, 8), (True, False, True), {}),
]


@pytest.mark.parametrize("case", SDPA, ids=str)
def test_scaled_dot_product_attention(case):
    q, k, v, needs, kw = case

    def build(lib):
        F = lib.nn.functional  # noqa: N806 - PyTorch's name
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw)

    check(build, list(zip((q, k, v), needs)))


def test_attention_mask_and_forward_only():
    def build(lib):
        mask = lib.ones(5, 7).tril().bool()
        F = lib.nn.functional  # noqa: N806 - PyTorch's name
        return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    shapes = [((2, 3, 5, 8), True), ((2, 3, 7, 8), True), ((2, 3, 7, 4), True)]
    check(build, shapes)
    check(build, shapes, backward=False)


# ---------------------------------------------------------------- small models


def _mlp(lib):
    nn = lib.nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3, bias=False)
            self.head = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))

        def forward(self, x):
            return self.head(self.fc2(self.act(self.fc1(x))))

    return MLP()


def _cnn(lib):
    nn = lib.nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=2)
            )
            self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.fc = nn.Linear(4, 10)

        def forward(self, x):
            y = self.up(self.features(x))
            return self.fc(y.mean((2, 3)))

    return CNN()


def _attention_block(lib):
    nn = lib.nn
    F = lib.nn.functional  # noqa: N806 - PyTorch's name

    class CausalSelfAttention(nn.Module):  # nanoGPT's block
        def __init__(self, n_embd=16, n_head=4):
            super().__init__()
            self.n_head = n_head
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(c, dim=2)
            q, k, v = (
                z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v)
            )
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, c))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(16), CausalSelfAttention()
            self.mlp = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 16))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(x)

    return Block()


@pytest.mark.parametrize("backward", [False, True])
def test_mlp_per_module(device, backward):
    check(_mlp, [((4, 6), False)], device, backward)


@pytest.mark.parametrize("backward", [False, True])
def test_cnn_per_module(device, backward):
    check(_cnn, [((2, 3, 8, 8), False)], device, backward)


@pytest.mark.parametrize("backward", [False, True])
def test_attention_block_per_module(device, backward):
    check(_attention_block, [((2, 6, 16), False)], device, backward)


# ---------------------------------------------------------------- the mode itself


def test_counts_reset_on_enter_and_stop_on_exit():
    model, x = _mlp(mg), mg.randn(4, 6)
    mode = FlopCounterMode(display=False)
    with mode:
        out = model(x)
    first = mode.get_total_flops()
    out.sum().backward()  # outside the mode: not counted
    assert mode.get_total_flops() == first
    with mode:
        model(x)
    assert mode.get_total_flops() == first


def test_table_depth_and_display(capsys):
    model, x = _mlp(mg), mg.randn(4, 6)
    with FlopCounterMode(depth=1) as mode:
        model(x).sum().backward()
    printed = capsys.readouterr().out
    assert printed.strip() == mode.get_table(1)
    lines = printed.splitlines()
    assert lines[0].split() == ["Module", "FLOP", "%", "Total"]
    assert any(line.startswith("MLP ") for line in lines)
    assert not any("MLP.fc1" in line for line in lines)
    assert "MLP.fc1" in mode.get_table(2) and "100.00%" in mode.get_table(2)
    from torch.utils.flop_counter import convert_num_with_suffix, get_suffix_str

    for n in (mode.get_total_flops(), 123456789):
        assert fc.get_suffix_str(n) == get_suffix_str(n)
        assert fc._with_suffix(n, get_suffix_str(n)) == convert_num_with_suffix(
            n, get_suffix_str(n)
        )
    assert convert_num_with_suffix(mode.get_total_flops(), "") in printed


def test_keys_equal_torch_ops_aten_and_custom_mapping():
    from manygrad.library import ops

    with FlopCounterMode(display=False) as mode:
        mg.randn(4, 6) @ mg.randn(6, 3)
    assert mode.get_flop_counts()["Global"][ops.aten.mm] == 2 * 4 * 6 * 3

    def mm_flop(a, b, out_shape=None):
        return 7

    with FlopCounterMode(display=False, custom_mapping={ops.aten.mm: mm_flop}) as mode:
        mg.randn(4, 6) @ mg.randn(6, 3)
    assert mode.get_total_flops() == 7
    with pytest.warns(UserWarning, match="mods argument is not needed"):
        FlopCounterMode(mods=[], display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FlopCounterMode(display=False)


def test_importable_as_torch_utils_flop_counter(tmp_path):
    from manygrad import compat

    path = tmp_path / "script.py"
    path.write_text(
        "import torch\n"
        "from torch.utils.flop_counter import FlopCounterMode\n"
        "m = torch.nn.Linear(8, 4)\n"
        "with FlopCounterMode(display=False) as fc:\n"
        "    m(torch.randn(2, 8)).sum().backward()\n"
        "result = fc.get_total_flops()\n"
    )
    assert compat.run_script(str(path))["result"] == 2 * (
        2 * 2 * 8 * 4
    )  # forward and the weight's gradient

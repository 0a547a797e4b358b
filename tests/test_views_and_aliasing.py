"""Views share memory with their base, as in PyTorch; copies do not. Checked by writing
through each and comparing the base with PyTorch's."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


def _base(lib, dev):
    x = lib.arange(12.0).reshape(3, 4)
    return x if dev is None else x.to(dev)


WRITES = {
    "diagonal": lambda lib, x: x.diagonal().zero_(),
    "diagonal_offset": lambda lib, x: x.diagonal(1).fill_(-1.0),
    "diagonal_negative_offset": lambda lib, x: x.diagonal(-1).add_(100.0),
    "diagonal_dims": lambda lib, x: x.reshape(3, 2, 2).diagonal(0, 1, 2).mul_(0.0),
    "T": lambda lib, x: x.T.mul_(2.0),
    "narrow": lambda lib, x: x.narrow(1, 1, 2).fill_(-1.0),
    "unbind": lambda lib, x: x.unbind(0)[1].add_(100.0),
    "contiguous_of_T_is_a_copy": lambda lib, x: x.T.contiguous().add_(1000.0),
    "contiguous_of_contiguous_is_itself": lambda lib, x: x.contiguous().add_(1000.0),
    "flip_is_a_copy": lambda lib, x: x.flip(0).add_(1.0),
    "advanced_index_is_a_copy": lambda lib, x: x[[0, 1]].add_(1.0),
}


@pytest.mark.parametrize("case", list(WRITES))
def test_writes_through_views_reach_the_base(device, case):
    def run(lib, dev):
        x = _base(lib, dev)
        WRITES[case](lib, x)
        return x

    np.testing.assert_array_equal(run(mg, device).cpu().numpy(), run(torch, None).numpy())


def test_contiguous_flags():
    x = mg.arange(12.0).reshape(3, 4)
    assert not x.T.is_contiguous()
    assert x.T.contiguous().is_contiguous()
    assert x.contiguous() is x


@pytest.mark.parametrize("write", [
    lambda lib, z: lib.view_as_real(z)[..., 0].add_(1.0),
    lambda lib, z: z.real.mul_(0.0),
    lambda lib, z: z.imag.fill_(7.0),
])  # fmt: skip
def test_complex_views_reach_the_base(device, write):
    def run(lib, dev):
        z = lib.tensor([1 + 2j, 3 + 4j])
        z = z if dev is None else z.to(dev)
        write(lib, z)
        return lib.view_as_real(z)

    np.testing.assert_array_equal(run(mg, device).cpu().numpy(), run(torch, None).numpy())


def test_view_as_complex_is_a_view():
    for lib in (mg, torch):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]])
        lib.view_as_complex(x).mul_(2)
        assert x.tolist() == [[2.0, 4.0], [6.0, 8.0]]


def test_diagonal_gradients_match_torch(device):
    def run(lib, dev):
        x = lib.tensor(np.arange(24.0).reshape(2, 3, 4))
        x = (x if dev is None else x.to(dev)).requires_grad_(True)
        d = x.diagonal(1, 1, 2)
        g1 = lib.autograd.grad((d * d).sum(), x, create_graph=True)[0]
        g2 = lib.autograd.grad((g1 * g1).sum(), x)[0]
        return d, g1, g2

    for got, want in zip(run(mg, device), run(torch, None)):
        np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy())


def test_output_only_ops_let_their_input_change():
    # exp keeps only its output: changing the input afterwards is harmless, as in PyTorch
    for lib in (mg, torch):
        a = lib.ones(2, requires_grad=True) * 1
        b = a.exp()
        a.mul_(2)
        b.sum().backward()
    # sin needs its input: the change is refused
    a = mg.ones(2, requires_grad=True) * 1
    b = a.sin()
    a.mul_(2)
    with pytest.raises(mg.errors.AutogradError, match="modified by an inplace operation"):
        b.sum().backward()


def test_list_of_sequences_indexes_like_a_tuple():
    for lib in (mg, torch):
        x = lib.arange(12.0).reshape(3, 4)
        with pytest.warns(UserWarning, match="non-tuple sequence"):
            assert x[[[0, 1], [2, 2]]].tolist() == [2.0, 6.0]
        assert x[[0, 2]].tolist() == [[0.0, 1.0, 2.0, 3.0], [8.0, 9.0, 10.0, 11.0]]


def test_shape_and_dtype_errors_are_runtime_errors_as_in_torch():
    # NOTE: PyTorch raises RuntimeError for these; ported `except RuntimeError:` still works
    with pytest.raises(RuntimeError, match=r"tensor a \(3\).*tensor b \(4\).*dimension 1"):
        mg.ones(2, 3) + mg.ones(4)
    with pytest.raises(mg.errors.ShapeError, match="mul: the size of tensor a"):
        mg.ones(2, 3, 5) * mg.ones(3, 1, 4)
    with pytest.raises(RuntimeError, match="Promotion for uint16"):
        mg.ones(2, dtype=mg.uint16) + mg.ones(2, dtype=mg.int32)


def test_view_refuses_incompatible_strides_as_pytorch():
    """``view`` of a non-contiguous tensor works where PyTorch's does (sharing memory) and
    raises PyTorch's RuntimeError where a copy would be needed, on random layouts."""
    rng = np.random.default_rng(0)
    seen = {True: 0, False: 0}
    for _ in range(300):
        nd = int(rng.integers(1, 5))
        shape = tuple(int(v) for v in rng.integers(1, 4, nd))
        numel = int(np.prod(shape))
        perm = [int(p) for p in rng.permutation(nd)]
        t = torch.arange(numel * 2).reshape(*shape[:-1], shape[-1] * 2)[..., ::2].permute(*perm)
        m = mg.arange(numel * 2).reshape(*shape[:-1], shape[-1] * 2)[..., ::2].permute(*perm)
        divs = [d for d in range(1, numel + 1) if numel % d == 0]
        for _ in range(3):
            a = int(rng.choice(divs))
            b = int(rng.choice([d for d in divs if (numel // a) % d == 0]))
            new = (a, b, numel // a // b)
            try:
                tv = t.view(*new)
            except RuntimeError:
                tv = None
            if tv is None:
                with pytest.raises(RuntimeError, match="reshape"):
                    m.view(*new)
            else:
                mv = m.view(*new)
                np.testing.assert_array_equal(mv.numpy(), tv.numpy())
                mv.add_(1)  # a view: the write reaches the base
                assert m.sum().item() == t.sum().item() + numel
                m.sub_(1)
            seen[tv is None] += 1
    assert seen[True] > 50 and seen[False] > 50, seen

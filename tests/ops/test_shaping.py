"""Diagonals, stacking, tiling, grids and index sets against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")


def _two(fn_name, **kw):
    """Wrap a function of a list of tensors for check_op (which passes tensors apart)."""

    def mgf(*ts):
        return getattr(mg, fn_name)(list(ts), **kw)

    def tf(*ts):
        return getattr(torch, fn_name)(list(ts), **kw)

    return mgf, tf


ROWS = [
    ("diagonal", [(4, 5)], {}),
    ("diagonal", [(4, 5)], {"offset": 2}),
    ("diagonal", [(2, 4, 3)], {"offset": -1, "dim1": 2, "dim2": 1}),
    ("diag_embed", [(2, 3)], {}),
    ("diag_embed", [(2, 3)], {"offset": 1, "dim1": 0, "dim2": 2}),
    ("diag", [(4,)], {}),
    ("diag", [(4,)], {"diagonal": -2}),
    ("diag", [(3, 4)], {"diagonal": 1}),
    ("diagflat", [(2, 2)], {}),
    ("trace", [(3, 4)], {}),
    ("diff", [(3, 5)], {}),
    ("diff", [(4, 3)], {"n": 2, "dim": 0}),
    (
        lambda x, p, a: mg.diff(x, prepend=p, append=a),
        [(3, 5), (3, 1), (3, 2)],
        {"torch_fn": lambda x, p, a: torch.diff(x, prepend=p, append=a)},
    ),
    ("tile", [(2, 3)], {"dims": (2,)}),
    ("tile", [(2, 3)], {"dims": (2, 1, 2)}),
    ("kron", [(2, 3), (3, 2)], {}),
    ("kron", [(2,), (2, 3)], {}),
    ("rot90", [(2, 3)], {}),
    ("rot90", [(2, 3, 4)], {"k": -1, "dims": (2, 0)}),
    ("rot90", [(2, 3)], {"k": 2}),
    ("fliplr", [(2, 3)], {}),
    ("flipud", [(2, 3)], {}),
    ("block_diag", [(2, 2), (3,), ()], {}),
    ("cartesian_prod", [(2,), (3,)], {}),
    ("combinations", [(4,)], {}),
    ("combinations", [(3,)], {"r": 2, "with_replacement": True}),
    ("repeat_interleave", [(2, 3)], {"repeats": 2}),
    ("repeat_interleave", [(2, 3)], {"repeats": 2, "dim": 1}),
    ("atleast_3d", [(3,)], {}),
    ("atleast_2d", [()], {}),
    ("broadcast_to", [(3, 1)], {"size": (2, 3, 4)}),
    ("swapaxes", [(2, 3, 4)], {"axis0": 0, "axis1": 2}),
    ("unbind", [(3, 2)], {"dim": 1}),
]
for _name in ("hstack", "vstack", "dstack", "column_stack", "row_stack"):
    _m, _t = _two(_name)
    ROWS.append((_m, [(2, 3), (2, 3)], {"torch_fn": _t}))
_m, _t = _two("hstack")
ROWS.append((_m, [(3,), (2,)], {"torch_fn": _t}))
_m, _t = _two("column_stack")
ROWS.append((_m, [(3,), (3, 2)], {"torch_fn": _t}))


@pytest.mark.parametrize("name,specs,opts", ROWS, ids=[f"{i}" for i, r in enumerate(ROWS)])
def test_shaping(name, specs, opts):
    check_op(name, specs, **opts)


def test_meshgrid_both_indexings():
    a, b, c = np.arange(3.0), np.arange(2.0), np.arange(4.0)
    for ix in ("ij", "xy"):
        got = mg.meshgrid(mg.tensor(a), mg.tensor(b), mg.tensor(c), indexing=ix)
        want = torch.meshgrid(torch.tensor(a), torch.tensor(b), torch.tensor(c), indexing=ix)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    check_op(lambda x, y: mg.meshgrid(x, y, indexing="xy"), [(3,), (2,)],
             torch_fn=lambda x, y: torch.meshgrid(x, y, indexing="xy"))  # fmt: skip


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_index_sets_and_integer_forms(device):
    for fn in ("tril_indices", "triu_indices"):
        for args in ((3, 4), (4, 3, 1), (3, 3, -1)):
            got = getattr(mg, fn)(*args, device=device)
            assert got.dtype == mg.int64 and str(got.device).startswith(device)
            np.testing.assert_array_equal(got.cpu().numpy(), getattr(torch, fn)(*args).numpy())
    r = mg.tensor([1, 0, 3], device=device)
    np.testing.assert_array_equal(mg.repeat_interleave(r).cpu().numpy(),
                                  torch.repeat_interleave(torch.tensor([1, 0, 3])).numpy())  # fmt: skip
    x = mg.tensor([[1, 2], [3, 4]], device=device)
    got = mg.repeat_interleave(x, mg.tensor([1, 2], device=device), dim=0)
    want = torch.repeat_interleave(torch.tensor([[1, 2], [3, 4]]), torch.tensor([1, 2]), dim=0)
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())
    assert mg.trace(x).item() == 5 and mg.trace(x).dtype == mg.int64
    np.testing.assert_array_equal(mg.diff(mg.tensor([True, True, False], device=device))
                                  .cpu().numpy(), [False, True])  # fmt: skip

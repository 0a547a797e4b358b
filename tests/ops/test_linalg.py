"""Matrix products against PyTorch and finite differences."""

import pytest

import manygrad as mg
from opcheck import check_op

ROWS = [
    ("matmul", [(3, 4), (4, 5)]),
    ("matmul", [(2, 3, 4), (4, 5)]),  # batched @ matrix
    ("matmul", [(2, 1, 3, 4), (5, 4, 2)]),  # broadcast batch dims
    ("matmul", [(4,), (4, 5)]),  # vector @ matrix
    ("matmul", [(3, 4), (4,)]),  # matrix @ vector
    ("matmul", [(2, 3, 4), (4,)]),
    ("matmul", [(4,), (2, 4, 3)]),
    ("matmul", [(4,), (4,)]),  # dot
    ("matmul", [(0, 4), (4, 3)]),  # empty
    ("mm", [(3, 4), (4, 2)]),
    ("bmm", [(2, 3, 4), (2, 4, 2)]),
    ("linear", [(5, 4), (3, 4), (3,)]),
    ("linear", [(2, 5, 4), (3, 4)]),
    ("linear", [(4,), (3, 4), (3,)]),
]


@pytest.mark.parametrize("name,specs", ROWS, ids=[f"{r[0]}-{i}" for i, r in enumerate(ROWS)])
def test_linalg(name, specs):
    check_op(name, specs)


def test_operator_and_errors():
    a, b = mg.randn(2, 3), mg.randn(3, 4)
    assert tuple((a @ b).shape) == (2, 4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 3\)"):
        a @ mg.randn(4, 3)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 3\)"):
        mg.linear(a, mg.randn(4, 5))
    with pytest.raises(ValueError, match="at least 1 dim"):
        mg.matmul(mg.tensor(1.0), a)

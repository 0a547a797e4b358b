"""manygrad.special and manygrad.random against torch.special and torch.random."""

import pytest

import manygrad as mg
import manygrad.special as S
from opcheck import check_op

torch = pytest.importorskip("torch")
TS = torch.special
ROWS = [
    ("expit", {}), ("logit", {"domain": (0.1, 0.9)}), ("gammaln", {"domain": (0.2, 4.0)}),
    ("psi", {"domain": (0.2, 4.0)}), ("ndtr", {}), ("ndtri", {"domain": (0.05, 0.95)}),
    ("log_ndtr", {}), ("entr", {"domain": (0.1, 2.0)}), ("erfinv", {"domain": (-0.9, 0.9)}),
    ("sinc", {}), ("exp2", {}), ("expm1", {}), ("log1p", {"domain": (0.0, 2.0)}),
]  # fmt: skip


@pytest.mark.parametrize("name,opts", ROWS, ids=[r[0] for r in ROWS])
def test_special_unary(name, opts):
    check_op(getattr(S, name), [(3, 4)], torch_fn=getattr(TS, name), **opts)


def test_special_binary_and_values():
    check_op(S.xlog1py, [(3, 4), (3, 4)], torch_fn=TS.xlog1py, domain=(0.1, 2.0))
    check_op(S.xlogy, [(3, 4), (3, 4)], torch_fn=TS.xlogy, domain=(0.1, 2.0))
    x = mg.tensor([-1.0, 0.0, 2.0])
    assert S.entr(x).tolist()[:2] == TS.entr(torch.tensor([-1.0, 0.0, 2.0])).tolist()[:2]
    check_op(lambda t: S.multigammaln(t, 2), [(3,)], domain=(1.5, 3.0),
             torch_fn=lambda t: TS.multigammaln(t, 2))  # fmt: skip


def test_random_module():
    import manygrad.random as R

    R.manual_seed(4)
    st = R.get_rng_state()
    a = mg.rand(3)
    R.set_rng_state(st)
    assert mg.rand(3).tolist() == a.tolist()
    assert isinstance(R.seed(), int) and R.Generator is mg.Generator

"""Margin, embedding and likelihood losses, distances and normalize against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
PM4 = rng.choice([-1, 1], size=4)
PM34 = rng.choice([-1, 1], size=(3, 4))
BIN34 = rng.integers(0, 2, size=(3, 4)).astype(np.float64)
CLS4 = rng.integers(0, 5, size=4)
W5 = rng.uniform(0.5, 2.0, size=5)
COUNTS = rng.integers(0, 6, size=(3, 4)).astype(np.float64)


def _typed(name, lib):
    """``name`` with constant float arguments (targets, weights) in the first input's dtype."""
    fn = getattr(lib.nn.functional, name)

    def f(*args, **kw):
        x = args[0]

        def conv(v):
            if isinstance(v, np.ndarray):
                v = torch.tensor(v) if lib is torch else mg.tensor(v, device=x.device)
            if isinstance(v, (torch.Tensor, mg.Tensor)) and v.is_floating_point():
                return v if v.requires_grad else v.to(x.dtype)
            return v

        return fn(*[conv(a) for a in args], **{k: conv(v) for k, v in kw.items()})

    return f


def check(name, specs, **kw):
    check_op(_typed(name, mg), specs, torch_fn=_typed(name, torch), **kw)


RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", RED)
def test_margin_ranking(reduction):
    check("margin_ranking_loss", [(4,), (4,), PM4], margin=0.3, reduction=reduction)


@pytest.mark.parametrize(
    "kw", [{}, dict(margin=0.5, p=1), dict(swap=True), dict(reduction="none", p=3)]
)
def test_triplet_margin(kw):
    check("triplet_margin_loss", [(4, 6), (4, 6), (4, 6)], **kw)


@pytest.mark.parametrize("reduction", RED)
def test_cosine_embedding(reduction):
    check("cosine_embedding_loss", [(4, 6), (4, 6), PM4], margin=-0.2, reduction=reduction)


@pytest.mark.parametrize("reduction", RED)
def test_hinge_embedding(reduction):
    check("hinge_embedding_loss", [(3, 4), PM34], margin=0.7, reduction=reduction)


@pytest.mark.parametrize("reduction", RED)
def test_soft_margin(reduction):
    check("soft_margin_loss", [(3, 4), PM34.astype(np.float64)], reduction=reduction)


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(4, 5), CLS4], {}),
        ([(4, 5), CLS4], dict(p=2, margin=0.5, reduction="sum")),
        ([(4, 5), CLS4], dict(weight=W5, reduction="none")),
        ([(5,), np.array(3)], {}),
    ],
)
def test_multi_margin(specs, kw):
    check("multi_margin_loss", specs, **kw)


@pytest.mark.parametrize("kw", [{}, dict(weight=W5[:4]), dict(reduction="none")])
def test_multilabel_soft_margin(kw):
    check("multilabel_soft_margin_loss", [(3, 4), BIN34], **kw)


@pytest.mark.parametrize(
    "kw",
    [{}, dict(full=True), dict(log_input=False), dict(log_input=False, full=True,
                                                      reduction="sum")],
)  # fmt: skip
def test_poisson_nll(kw):
    domain = (0.1, 2.0) if kw.get("log_input") is False else (-2, 2)
    check("poisson_nll_loss", [(3, 4), COUNTS], domain=domain, **kw)


@pytest.mark.parametrize(
    "var, kw",
    [((3, 4), {}), ((3, 4), dict(full=True, reduction="sum")), ((3,), {}),
     ((3, 1), dict(reduction="none"))],
)  # fmt: skip
def test_gaussian_nll(var, kw):
    check("gaussian_nll_loss", [(3, 4), (3, 4), var], domain=(0.2, 2.0), **kw)


@pytest.mark.parametrize(
    "name, specs, kw",
    [
        ("cosine_similarity", [(4, 6), (4, 6)], {}),
        ("cosine_similarity", [(2, 3, 4), (1, 3, 4)], dict(dim=-1)),
        ("pairwise_distance", [(4, 6), (4, 6)], {}),
        ("pairwise_distance", [(4, 6), (4, 6)], dict(p=1.0, keepdim=True)),
        ("pairwise_distance", [(4, 6), (6,)], dict(p=3.0)),
        ("normalize", [(4, 6)], {}),
        ("normalize", [(2, 3, 4)], dict(p=1.0, dim=-1)),
    ],
)
def test_distance(name, specs, kw):
    check_op(name, specs, **kw)


@pytest.mark.parametrize(
    "cls, args, inputs",
    [
        ("MarginRankingLoss", (0.1,), [(4,), (4,), PM4]),
        ("TripletMarginLoss", (), [(4, 6), (4, 6), (4, 6)]),
        ("CosineEmbeddingLoss", (0.1,), [(4, 6), (4, 6), PM4]),
        ("HingeEmbeddingLoss", (), [(3, 4), PM34]),
        ("SoftMarginLoss", (), [(3, 4), PM34.astype(np.float64)]),
        ("MultiMarginLoss", (2,), [(4, 5), CLS4]),
        ("MultiLabelSoftMarginLoss", (), [(3, 4), BIN34]),
        ("PoissonNLLLoss", (), [(3, 4), COUNTS]),
        ("GaussianNLLLoss", (), [(3, 4), (3, 4), (3, 4)]),
        ("CosineSimilarity", (), [(4, 6), (4, 6)]),
        ("PairwiseDistance", (), [(4, 6), (4, 6)]),
    ],
)
def test_modules(cls, args, inputs):
    r = np.random.default_rng(1)
    arrs = [r.uniform(0.2, 2, s) if isinstance(s, tuple) else s for s in inputs]
    t_in = [torch.tensor(a, requires_grad=isinstance(s, tuple)) for a, s in zip(arrs, inputs)]
    m_in = [mg.tensor(a, requires_grad=isinstance(s, tuple)) for a, s in zip(arrs, inputs)]
    ty = getattr(torch.nn, cls)(*args)(*t_in)
    my = getattr(mg.nn, cls)(*args)(*m_in)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-9)
    ty.sum().backward()
    my.sum().backward()
    for m, t in zip(m_in, t_in):
        if t.requires_grad:
            np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        mg.nn.functional.soft_margin_loss(mg.randn(3), mg.ones(3), reduction="avg")
    with pytest.raises(ValueError, match="p == 1"):
        mg.nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="var"):
        mg.nn.functional.gaussian_nll_loss(mg.randn(3, 4), mg.randn(3, 4), mg.ones(2))


@pytest.mark.parametrize("log_input", [True, False])
def test_poisson_nll_full_differentiates_the_target(log_input):
    # NOTE: targets above 1 take the Stirling term, whose gradient reaches the target
    check("poisson_nll_loss", [(3, 4), (3, 4)], domain=(1.2, 3.0), log_input=log_input,
          full=True)  # fmt: skip

"""Argument validation of mg.distributions against torch.distributions: every distribution
built with valid and invalid parameters, log_prob / cdf / icdf of values inside and outside
the support, the supports and arg_constraints, every constraint's check on edge values,
validate_args=False, set_default_validate_args, expand, and one host read per call.

Each case is a line of source run twice, with ``D`` the distributions module and ``t`` the
tensor factory of torch and of manygrad: both must succeed, or raise the same ValueError
(same message), or both fail for other reasons."""

import math
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest
import torch
import torch.distributions as TD
import torch.distributions.constraints as TC
from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

import manygrad as mg
import manygrad.distributions as MD
import manygrad.distributions.constraints as MC

# NOTE: torch keeps these two in their modules only
TDX = types.SimpleNamespace(**{k: getattr(TD, k) for k in dir(TD) if not k.startswith("__")})
TDX.LogitRelaxedBernoulli, TDX.ExpRelaxedCategorical = LogitRelaxedBernoulli, ExpRelaxedCategorical
LIBS = {"torch": (torch, TDX, TC), "mg": (mg, MD, MC)}


def _env(side):
    lib, dists, cons = LIBS[side]

    def t(x, dtype=None):
        return lib.tensor(x, dtype=getattr(lib, dtype) if dtype else None)

    return {"D": dists, "C": cons, "t": t, "m": lib, "nan": math.nan, "inf": math.inf}


def _run(src, side):
    """("ok", result) or (exception type name, message with manygrad's names as torch's)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return "ok", eval(src, _env(side))
    except Exception as e:  # noqa: BLE001 - the outcome is what is compared
        return type(e).__name__, str(e).replace("manygrad.", "torch.")


def _mismatches(sources):
    """The sources whose outcomes differ: a ValueError on one side only, or two different
    ValueError messages (errors of other kinds on both sides, or manygrad accepting what
    torch fails on for a reason other than validation, count as agreeing)."""
    bad = []
    for src in sources:
        (kt, mt), (km, mm) = _run(src, "torch"), _run(src, "mg")
        same = kt == km and (kt == "ok" or mt == mm)
        if not same and "ValueError" not in (kt, km) and kt != "ok":
            same = True
        if not same:
            bad.append(f"{src}\n  torch: {kt}: {mt if kt != 'ok' else ''}\n  mg:    {km}: "
                       f"{mm if km != 'ok' else ''}")  # fmt: skip
    return bad


@pytest.fixture(autouse=True)
def _default_on():
    """Every test starts and ends with validation on (PyTorch's default)."""
    MD.Distribution.set_default_validate_args(True)
    TD.Distribution.set_default_validate_args(True)
    yield
    MD.Distribution.set_default_validate_args(True)
    TD.Distribution.set_default_validate_args(True)


# ------------------------------------------------------------------ constructors

REAL = (["t([0., -2.5])", "t([inf, -inf])", "0.5"], ["t([0., nan])", "nan"])
POS = (["t([1., 2.])", "t([1., inf])", "2.0"],
       ["t([1., 0.])", "t([1., -1.])", "t([nan, 1.])", "0.0", "-1.0"])  # fmt: skip
NONNEG = (["t([1., 2.])", "t([0., inf])", "0.0"], ["t([1., -1.])", "t([nan, 1.])", "-1e-30"])
UNIT = (["t([0.3, 0.7])", "t([0., 1.])", "0.5"],
        ["t([0.5, 1.5])", "t([-0.1, 0.5])", "t([nan, 0.5])", "1.0000001"])  # fmt: skip
PROBV = (["t([0.2, 0.8])", "t([1., 3.])", "t([[0.5, 0.5], [1., 0.]])"],
         ["t([-1., 2.])", "t([0., 0.])", "t([nan, 1.])", "t([inf, 1.])"])  # fmt: skip
LOGV = (["t([0., 1.])", "t([-inf, 0.])", "t([[1., 2.], [3., 4.]])"],
        ["t([nan, 0.])", "t([inf, 0.])", "t([-inf, -inf])"])  # fmt: skip
COUNT = (
    ["t([0., 5.])", "3", "t([2., 2.])"],
    ["t([1.5, 2.])", "t([-1., 2.])", "t([nan, 2.])", "-1"],
)
TEMP = (["t(0.5)", "0.5", "t([1., 2.])"], ["t(-1.)", "t(nan)", "0.0"])
SPD, TRIL = "t([[2., 1.], [1., 2.]])", "t([[2., 0.], [1., 2.]])"
NOT_PD = ["t([[1., 2.], [2., 1.]])", "t([[2., 1.], [0., 2.]])", "t([[1., 1.], [1., 1.]])",
          "t([[nan, 0.], [0., 1.]])", "t([[inf, 0.], [0., 1.]])"]  # fmt: skip
NOT_TRIL = ["t([[2., 1.], [1., 2.]])", "t([[0., 0.], [1., 2.]])", "t([[-1., 0.], [1., 2.]])",
            "t([[nan, 0.], [1., 2.]])"]  # fmt: skip


def _grid(template, **params):
    """The all-valid case, then each other value of each parameter with the rest valid."""
    base = {k: ok[0] for k, (ok, _) in params.items()}
    out = [template.format(**base)]
    for k, (ok, bad) in params.items():
        out += [template.format(**{**base, k: v}) for v in ok[1:] + bad]
    return out


CTOR = {
    "location-scale": [c for n in ("Normal", "Laplace", "Cauchy", "Gumbel", "LogNormal",
                                   "LogisticNormal", "VonMises")
                       for c in _grid(f"D.{n}({{a}}, {{b}})", a=REAL, b=POS)],
    "scale": [c for n in ("HalfNormal", "HalfCauchy", "Exponential", "Chi2")
              for c in _grid(f"D.{n}({{a}})", a=POS)] + _grid("D.Poisson({a})", a=NONNEG),
    "two positive": [c for n in ("Gamma", "InverseGamma", "Beta", "Kumaraswamy",
                                 "FisherSnedecor", "Weibull", "Pareto")
                     for c in _grid(f"D.{n}({{a}}, {{b}})", a=POS, b=POS)],
    "three": _grid("D.StudentT({a}, {b}, {c})", a=POS, b=REAL, c=POS)
    + _grid("D.GeneralizedPareto({a}, {b}, {c})", a=REAL, b=POS, c=REAL),
    "uniform": _grid("D.Uniform({a}, {b})",
                     a=(["t([0., -1.])", "t([-inf, 0.])", "0.0"],
                        ["t([0., 5.])", "t([nan, 0.])", "t([2., 3.])", "1.0"]),
                     b=(["t([1., 2.])", "t([inf, 2.])"],
                        ["t([0., 2.])", "t([1., nan])", "t([-1., 2.])"])),
    "binary": [c for n in ("Bernoulli", "Geometric", "ContinuousBernoulli")
               for c in _grid(f"D.{n}(probs={{p}})", p=UNIT) + _grid(f"D.{n}(logits={{p}})", p=REAL)]
    + [c for n in ("RelaxedBernoulli", "LogitRelaxedBernoulli")
       for c in _grid(f"D.{n}({{T}}, probs={{p}})", T=TEMP, p=UNIT)
       + _grid(f"D.{n}(t(0.5), logits={{p}})", p=REAL)]
    + ["D.Geometric(probs=t([0., 0.5]))", "D.Geometric(probs=t(0.))",
       "D.ContinuousBernoulli(probs=t([0.5, 1.5]), validate_args=False)",
       "D.ContinuousBernoulli(probs=t([0.5, nan]), validate_args=True)"],
    "categorical": [c for n in ("Categorical", "OneHotCategorical",
                                "OneHotCategoricalStraightThrough")
                    for c in _grid(f"D.{n}(probs={{p}})", p=PROBV)
                    + _grid(f"D.{n}(logits={{p}})", p=LOGV)]
    + [c for n in ("RelaxedOneHotCategorical", "ExpRelaxedCategorical")
       for c in _grid(f"D.{n}({{T}}, probs={{p}})", T=TEMP, p=PROBV)
       + _grid(f"D.{n}(t(0.5), logits={{p}})", p=LOGV)],
    "counts": _grid("D.Binomial({n}, probs={p})", n=COUNT, p=UNIT)
    + _grid("D.Binomial({n}, logits={p})", n=COUNT, p=REAL)
    + _grid("D.NegativeBinomial({n}, probs={p})",
            n=(COUNT[0] + ["t([0.5, 2.])", "t([0., 0.])"], ["t([-1., 2.])", "t([nan, 2.])"]),
            p=(["t([0.3, 0.7])", "t([0., 0.5])"], ["t([0.5, 1.])", "t([-0.1, 0.5])"]))
    + _grid("D.NegativeBinomial({n}, logits={p})", n=(COUNT[0], ["t([-1., 2.])"]), p=REAL)
    + _grid("D.Multinomial({n}, probs={p})", n=(["3", "0"], ["-1"]), p=PROBV)
    + _grid("D.Multinomial(3, logits={p})", p=LOGV),
    "simplex and matrices": _grid("D.Dirichlet({c})",
                                  c=(["t([1., 2.])", "t([[0.5, 2.], [1., inf]])"],
                                     ["t([1., 0.])", "t([-1., 2.])", "t([nan, 1.])"]))
    + _grid("D.LKJCholesky(3, {c})", c=(["t([1., 2.])", "0.5"], ["t([1., 0.])", "t(nan)", "-1."]))
    + [c for p in ("covariance_matrix", "precision_matrix")
       for c in _grid(f"D.MultivariateNormal({{loc}}, {p}={{m}})",
                      loc=(["t([0., 1.])", "t([inf, 0.])"], ["t([nan, 0.])"]),
                      m=([SPD, f"{SPD}.expand(3, 2, 2)"], NOT_PD))
       + _grid(f"D.Wishart({{df}}, {p}={{m}})",
               df=(["t(3.)", "t([2., 5.])", "1.5"], ["t(0.5)", "t(-1.)", "t(nan)", "t(1.)"]),
               m=([SPD], NOT_PD))]
    + _grid("D.MultivariateNormal(t([0., 1.]), scale_tril={m})", m=([TRIL], NOT_TRIL))
    + _grid("D.Wishart(t(3.), scale_tril={m})", m=([TRIL], NOT_TRIL))
    + _grid("D.LowRankMultivariateNormal({loc}, {w}, {d})", loc=(["t([0., 1.])"], ["t([nan, 1.])"]),
            w=(["t([[1.], [2.]])", "t([[inf], [2.]])"], []),
            d=(["t([1., 2.])"], ["t([0., 2.])", "t([-1., 2.])"])),
    # the rules of composite distributions: which inner distribution checks, by which setting
    "composite": [
        "D.Independent(D.Normal(t([0., 1.]), t([1., 0.])), 1)",
        "D.Independent(D.Normal(t([0., 1.]), t([1., 0.]), validate_args=False), 1)",
        "D.Independent(D.Normal(t([0., 1.]), t([1., 1.])), 2)",
        "D.MixtureSameFamily(D.Categorical(t([0.5, 0.5])), D.Normal(t([0., 1.]), t([1., 0.])))",
        "D.MixtureSameFamily(D.Categorical(t([0.5, -0.5])), D.Normal(t([0., 1.]), t([1., 1.])))",
        "D.TransformedDistribution(D.Normal(t([0., 1.]), t([1., 0.])), [D.ExpTransform()])",
        "D.TransformedDistribution(D.Normal(t([0., 1.]), t([1., 0.]), validate_args=False), "
        "D.ExpTransform())",
        "D.Normal(t([0.], dtype='float64'), t([-1.], dtype='float64'))",
        "D.Normal(t([[0., 1.], [2., 3.]]), t([[1., 1.], [1., -1.]]))",
        "D.Normal(t(0.), t(-1.))",
        "D.Normal(0., -1.)",
        "D.Categorical()",
        "D.Categorical(t(0.5))",
    ] + [f"D.{c}, validate_args=False)" for c in (
        "Multinomial(3, probs=t([-1., 2.])", "OneHotCategorical(probs=t([-1., 2.])",
        "RelaxedBernoulli(t(-1.), probs=t([1.5])", "LogNormal(t([0., 1.]), t([1., 0.])",
        "InverseGamma(t([1., 1.]), t([1., 0.])", "Pareto(t([1., 1.]), t([1., 0.])",
        "Kumaraswamy(t([1., 1.]), t([1., 0.])", "Weibull(t([1., 1.]), t([1., 0.])",
        "Gumbel(t([1., 1.]), t([1., 0.])", "Chi2(t([1., 0.])", "Beta(t([1., 1.]), t([1., 0.])",
        "StudentT(t([1., 0.])", "FisherSnedecor(t([1., 0.]), t([1., 1.])",
        "LKJCholesky(3, t(-1.)", "LogisticNormal(t([1., 1.]), t([1., 0.])",
        "RelaxedOneHotCategorical(t(0.5), probs=t([-1., 2.])", "Geometric(probs=t([0., 0.5])",
        "Wishart(t(nan), covariance_matrix=t([[2., 1.], [1., 2.]])",
        "Wishart(t(1.), covariance_matrix=t([[2., 1.], [1., 2.]])",
        "MultivariateNormal(t([0., 1.]), scale_tril=t([[2., 1.], [1., 2.]])")],
}  # fmt: skip


@pytest.mark.parametrize("group", sorted(CTOR))
def test_constructors_raise_as_torch(group):
    bad = _mismatches(CTOR[group])
    assert not bad, f"{len(bad)} of {len(CTOR[group])} differ:\n" + "\n".join(bad[:5])


# ------------------------------------------------------------------ values and attributes

REALV = ["t([0.5, -1.])", "t([inf, 0.])", "t([nan, 0.])", "t([[0.5, 1.], [2., 3.]])",
         "t([1., 2., 3.])", "0.5", "t(0.3)"]  # fmt: skip
POSV = ["t([0.5, 2.])", "t([0., 1.])", "t([-1., 1.])", "t([nan, 1.])", "t([inf, 1.])",
        "t([1., 2., 3.])"]  # fmt: skip
UNITV = ["t([0.5, 0.2])", "t([0., 1.])", "t([-0.1, 0.5])", "t([1.1, 0.5])", "t([nan, 0.5])"]
INTV = ["t([0., 2.])", "t([1., 5.])", "t([0.5, 1.])", "t([-1., 1.])", "t([nan, 1.])",
        "t([0, 2])", "t([True, False])"]  # fmt: skip
SIMPLEXV = ["t([0.2, 0.3, 0.5])", "t([0.2, 0.3, 0.6])", "t([-0.1, 0.6, 0.5])", "t([0.5, 0.5])"]
MIX = "D.MixtureSameFamily(D.Categorical(t([0.5, 0.5])), "
VALUES = [
    *[(f"D.{n}(t([0., 1.]), t([1., 2.]))", REALV)
      for n in ("Normal", "Laplace", "Cauchy", "Gumbel", "VonMises")],
    ("D.StudentT(t([3., 4.]), t([0., 1.]), t([1., 2.]))", REALV),
    ("D.LogitRelaxedBernoulli(t(0.5), probs=t([0.3, 0.8]))", REALV),
    ("D.Uniform(t([0., 1.]), t([1., 3.]))",
     ["t([0.5, 2.])", "t([0., 1.])", "t([1., 3.])", "t([-0.1, 2.])", "t([nan, 2.])"]),
    *[(f"D.{n}(t([1., 2.]))", POSV) for n in ("Exponential", "Chi2", "HalfNormal", "HalfCauchy")],
    *[(f"D.{n}(t([2., 3.]), t([1., 2.]))", POSV)
      for n in ("Gamma", "LogNormal", "Weibull", "InverseGamma", "FisherSnedecor")],
    ("D.Pareto(t([1., 2.]), t([1., 2.]))", ["t([1., 2.])", "t([0.5, 3.])", "t([nan, 3.])"]),
    ("D.GeneralizedPareto(t([0., 1.]), t([1., 2.]), t([0.5, -0.5]))",
     ["t([0.5, 2.])", "t([0., 5.])", "t([-1., 2.])", "t([1., 6.])", "t([nan, 2.])"]),
    *[(f"D.{n}(t([1., 2.]), t([2., 3.]))", UNITV) for n in ("Beta", "Kumaraswamy")],
    ("D.ContinuousBernoulli(probs=t([0.3, 0.8]))", UNITV),
    ("D.RelaxedBernoulli(t(0.5), probs=t([0.3, 0.8]))", UNITV),
    *[(f"D.{n}(probs=t([0.3, 0.8]))", INTV) for n in ("Bernoulli", "Geometric")],
    ("D.Poisson(t([1., 2.]))", INTV),
    ("D.Binomial(t([5., 3.]), probs=t([0.3, 0.8]))", INTV + ["t([4., 4.])"]),
    ("D.NegativeBinomial(t([5., 5.]), probs=t([0.3, 0.8]))", INTV),
    ("D.Categorical(probs=t([0.2, 0.3, 0.5]))",
     ["t([0, 2])", "t([3, 0])", "t([-1, 0])", "t([1.5, 0.])", "t([nan, 0.])", "t(1)"]),
    ("D.Categorical(logits=t([[0.2, 0.3, 0.5], [1., 2., 3.]]))", ["t([0, 3])", "t([0, 1, 2])"]),
    ("D.OneHotCategorical(probs=t([0.2, 0.3, 0.5]))",
     ["t([0., 0., 1.])", "t([0., 1., 1.])", "t([0., 0.5, 0.5])", "t([0., 1.])"]),
    ("D.Multinomial(4, probs=t([0.2, 0.3, 0.5]))",
     ["t([1., 1., 2.])", "t([1., 1., 3.])", "t([-1., 2., 3.])", "t([0.5, 1., 2.])"]),
    ("D.Dirichlet(t([1., 2., 3.]))", SIMPLEXV + ["t([0.2, 0.3, 0.5000001])"]),
    ("D.LogisticNormal(t([0., 1.]), t([1., 2.]))", SIMPLEXV),
    ("D.RelaxedOneHotCategorical(t(0.5), probs=t([0.2, 0.3, 0.5]))", SIMPLEXV),
    ("D.ExpRelaxedCategorical(t(0.5), probs=t([0.2, 0.3, 0.5]))",
     ["t([-1., -2., -0.5])", "t([nan, -2., -0.5])"]),
    ("D.MultivariateNormal(t([0., 1.]), covariance_matrix=t([[2., 1.], [1., 2.]]))",
     ["t([0.5, 1.])", "t([nan, 1.])", "t([1., 2., 3.])", "t(1.)"]),
    ("D.LowRankMultivariateNormal(t([0., 1.]), t([[1.], [2.]]), t([1., 2.]))",
     ["t([0.5, 1.])", "t([nan, 1.])"]),
    ("D.Wishart(t(3.), covariance_matrix=t([[2., 1.], [1., 2.]]))",
     ["t([[2., 1.], [1., 2.]])", "t([[1., 2.], [2., 1.]])", "t([[2., 1.], [0., 2.]])",
      "t([[1., 1.], [1., 1.]])", "t([2., 1.])"]),
    ("D.LKJCholesky(2, t(1.5))",
     ["t([[1., 0.], [0.6, 0.8]])", "t([[1., 0.], [0.6, 0.9]])", "t([[1., 0.1], [0.6, 0.8]])",
      "t([[1., 0.], [0.8, -0.6]])", "t([[1., 0.], [0.6, 0.8000001]])"]),
    ("D.Independent(D.Normal(t([0., 1.]), t([1., 2.])), 1)", REALV),
    ("D.Independent(D.Bernoulli(probs=t([[0.2, 0.5]])), 2)", ["t([[0., 1.]])", "t([[0., 2.]])"]),
    ("D.Independent(D.Bernoulli(probs=t([[0.2, 0.5]])), 2, validate_args=False)",
     ["t([[0., 2.]])"]),
    ("D.Independent(D.Bernoulli(probs=t([[0.2, 0.5]]), validate_args=False), 2)",
     ["t([[0., 2.]])"]),
    (MIX + "D.Normal(t([0., 1.]), t([1., 2.])))", ["t(0.5)", "t(nan)", "t([[0.5], [1.]])"]),
    (MIX + "D.Gamma(t([1., 1.]), t([1., 2.])))", ["t(0.5)", "t(-0.5)"]),
    (MIX + "D.Gamma(t([1., 1.]), t([1., 2.])), validate_args=False)", ["t(-0.5)"]),
    (MIX + "D.Independent(D.Gamma(t([[1., 1.], [1., 2.]]), t([[1., 2.], [3., 4.]])), 1))",
     ["t([0.5, 1.])", "t([-0.5, 1.])", "t([0.5])"]),
    ("D.TransformedDistribution(D.Normal(t([0., 1.]), t([1., 2.])), [D.ExpTransform()])", POSV),
    ("D.TransformedDistribution(D.Normal(t([0., 1.]), t([1., 2.])), "
     "[D.SigmoidTransform(), D.AffineTransform(1., -2.)])",
     ["t([0., -0.5])", "t([1., -1.])", "t([-1.5, 0.5])"]),
    ("D.TransformedDistribution(D.Uniform(t([0., 1.]), t([1., 2.])), [D.AffineTransform(0., 2.)])",
     ["t([1., 3.])", "t([3., 3.])", "t([-1., 2.])"]),
    ("D.Normal(t([0., 1.]), t([1., 2.]), validate_args=False)", ["t([nan, 0.])"]),
    ("D.Normal(t([0., 1.]), t([1., 2.])).expand((3, 2))", ["t([nan, 0.])"]),
    ("D.Normal(t([0., 1.]), t([1., 2.]), validate_args=False).expand((3, 2))", ["t([nan, 0.])"]),
    ("D.Categorical(probs=t([0.2, 0.8])).expand((3,))", ["t([0, 5, 1])", "t([0, 1, 1])"]),
    ("D.LogNormal(t([0., 1.]), t([1., 2.])).expand((3, 2))", ["t([-1., 1.])"]),
    ("D.Beta(t([1., 2.]), t([2., 3.])).expand((3, 2))", ["t([1.5, 0.5])"]),
    (MIX + "D.Gamma(t([1., 1.]), t([1., 2.]))).expand((3,))", ["t(-1.)"]),
]  # fmt: skip


def _value_sources(ctor, values):
    out = [f"{ctor}.{m}({v})" for v in values for m in ("log_prob", "cdf")]
    out += [f"{ctor}.icdf({values[0]})", f"{ctor}.icdf({values[-1]})"]
    out += [f"repr({ctor}.{a})" for a in ("support", "arg_constraints", "_validate_args")]
    return out + [f"{ctor}.log_survival_function({v})" for v in values if "Pareto" in ctor]


@pytest.mark.parametrize("ctor,values", VALUES, ids=[c[:40] for c, _ in VALUES])
def test_values_and_supports_as_torch(ctor, values):
    bad = _mismatches(_value_sources(ctor, values))
    assert not bad, f"{len(bad)} differ:\n" + "\n".join(bad[:5])


def test_class_supports_and_arg_constraints_as_torch():
    for name in sorted(n for n in dir(TDX) if isinstance(getattr(TDX, n), type)):
        tcls, mcls = getattr(TDX, name), getattr(MD, name, None)
        if not issubclass(tcls, TD.Distribution) or mcls is None:
            continue
        for attr in ("support", "arg_constraints"):
            t, m = tcls.__dict__.get(attr), None
            for c in mcls.__mro__:  # NOTE: where the class has it, as torch's
                if attr in c.__dict__:
                    m = c.__dict__[attr]
                    break
            t = getattr(tcls, attr) if t is None else t
            if isinstance(t, property) or isinstance(m, property):
                assert isinstance(t, property) == isinstance(m, property), (name, attr)
                assert TC.is_dependent(t) == MC.is_dependent(m), (name, attr)
                for static in ("_is_discrete", "_event_dim"):
                    assert getattr(t, static, 0) == getattr(m, static, 0), (name, attr, static)
            else:
                assert repr(m) == repr(t), (name, attr)


# ------------------------------------------------------------------ constraints

NUMS = "t([0., 0.5, 1., 1.5, 2., 3., -1., -0.5, inf, -inf, nan, 1e-30, -1e-30, 1. + 1e-7])"
INTS = "t([0, 1, 2, 3, -1, 5])"
BOOLS = "t([True, False])"
VECS = ("t([[0.2, 0.8], [0., 1.], [1., 0.], [0.5, 0.6], [-0.1, 1.1], [nan, 1.], [1., 1.],"
        " [0.3, 0.7000001], [0.3, 0.70001], [0., 0.], [1e-8, 1.], [2., 1.]])")  # fmt: skip
M2 = ("t([[[2., 1.], [1., 2.]], [[1., 2.], [2., 1.]], [[2., 1.], [0., 2.]], [[1., 1.], [1., 1.]],"
      " [[1., 0.], [0., 1e-8]], [[-1., 0.], [0., -1.]], [[2., 0.], [1., 2.]], [[0., 0.], [1., 1.]],"
      " [[1., 0.], [0.6, 0.8]], [[1., 0.], [0.6, 0.8000001]], [[1., 0.], [0.6, 0.80001]],"
      " [[2., 1.], [1. + 1e-7, 2.]], [[2., 1.], [1. + 1e-5, 2.]], [[inf, 0.], [0., 1.]]])")  # fmt: skip
SCALAR = ["C.real", "C.positive", "C.nonnegative", "C.greater_than(1.5)", "C.greater_than_eq(1.5)",
          "C.less_than(1.5)", "C.interval(0., 1.)", "C.half_open_interval(0., 1.)",
          "C.unit_interval", "C.boolean", "C.nonnegative_integer", "C.positive_integer",
          "C.integer_interval(0, 3)", "C._IntegerLessThan(2)", "C.greater_than(t(0.5))",
          "C.interval(t([[0.], [1.]]), 2.)"]  # fmt: skip
VECTOR = ["C.simplex", "C.one_hot", "C.multinomial(1)", "C.real_vector",
          "C.independent(C.positive, 1)", "C.MixtureSameFamilyConstraint(C.positive)",
          "C.cat([C.positive, C.real], 1)", "C.stack([C.positive, C.unit_interval], 1)",
          "C.cat([C.real, C.positive], -1, [1, 1])",
          "C.stack([C.positive, C.unit_interval], -1)"]  # fmt: skip
MATRIX = ["C.lower_triangular", "C.lower_cholesky", "C.corr_cholesky", "C.square", "C.symmetric",
          "C.positive_semidefinite", "C.positive_definite", "C.independent(C.real, 2)",
          "C.independent(C.positive, 2)"]  # fmt: skip


def _check_arrays(cons, value):
    out = {}
    for side in LIBS:
        kind, r = _run(f"({cons}).check({value})", side)
        out[side] = np.asarray(r.numpy()) if kind == "ok" else (kind, r)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_constraint_checks_as_torch(dtype):
    to = f".to(m.{dtype})"
    pairs = [(c, v + to) for c in SCALAR for v in (NUMS, INTS, BOOLS)]
    pairs += [(c, VECS + to) for c in VECTOR] + [(c, M2 + to) for c in MATRIX + VECTOR]
    pairs += [(c, M2 + to + "[i:i + 1]") for c in ("C.positive_definite", "C.symmetric")
              for i in range(14)]  # fmt: skip
    pairs += [("C.positive_definite", "t([[[2., 0.], [0., 2.]], [[1., 2.], [2., 1.]]])" + to),
              ("C.positive_semidefinite", "t([[[1., 1.], [1., 1.]], [[1., 2.], [2., 1.]]])" + to),
              ("C.square", "t([[1., 2., 3.], [4., 5., 6.]])"),
              ("C.symmetric", "t([[1., 2., 3.], [4., 5., 6.]])")]  # fmt: skip
    bad = []
    for cons, value in pairs:
        res = _check_arrays(cons, value)
        t, m = res["torch"], res["mg"]
        ok = (isinstance(t, tuple) and isinstance(m, tuple) and t[0] == m[0]) or (
            not isinstance(t, tuple) and not isinstance(m, tuple)
            and t.shape == m.shape and (t == m).all())  # fmt: skip
        if not ok:
            bad.append(f"{cons}.check({value[:60]}...): torch {t} mg {m}")
    assert not bad, "\n".join(bad[:5])


def test_constraint_attributes_as_torch():
    names = SCALAR + VECTOR + MATRIX + [
        "C.dependent", "C.dependent(is_discrete=True, event_dim=1)",
        "C.independent(C.simplex, 2)", "C.stack([C.simplex, C.real], -1)", "C.cat([C.simplex])",
    ]  # fmt: skip
    srcs = []
    for n in names:
        srcs += [f"repr({n})", f"({n}).is_discrete", f"({n}).event_dim", f"C.is_dependent({n})"]
    srcs += ["C.independent(C.real, -1)", "C.independent(C.real, 1.0)", "C.independent(1, 1)",
             "C.cat([C.real, 1])", "C.cat([C.real], 0, [1, 2])", "C.stack([1])",
             "C.cat([C.real]).check(t([1.]), )", "C.stack([C.real], 2).check(t([1.]))",
             "C.dependent.check(t([1.]))", "C.dependent(event_dim=2).is_discrete",
             "isinstance(C.half_open_interval(0., 1.), type(C.unit_interval))"]  # fmt: skip
    results = {side: [_run(s, side) for s in srcs] for side in LIBS}
    for s, a, b in zip(srcs, results["torch"], results["mg"]):
        assert a[0] == b[0], (s, a, b)
        if a[0] == "ok":
            assert repr(a[1]).replace("manygrad.", "torch.") == repr(b[1]).replace(
                "manygrad.", "torch."), (s, a, b)  # fmt: skip


# ------------------------------------------------------------------ switches


def test_validate_args_false_and_default_switch():
    for side in LIBS:
        D = LIBS[side][1]
        t = _env(side)["t"]
        with pytest.raises(ValueError, match="Expected parameter scale"):
            D.Normal(t([0.0, 0.0]), t([1.0, -1.0]))
        d = D.Normal(t([0.0, 0.0]), t([1.0, -1.0]), validate_args=False)
        assert d._validate_args is False and d.expand((3, 2))._validate_args is False
        D.Distribution.set_default_validate_args(False)
        d = D.Normal(t([0.0, 0.0]), t([1.0, -1.0]))  # no error
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # NOTE: the log of scale -1
            d.log_prob(t([math.nan, 0.0]))
        with pytest.raises(ValueError, match="Expected value argument"):
            D.Normal(0.0, 1.0, validate_args=True).log_prob(t([math.nan]))
        e = D.Normal(0.0, 1.0).expand((2,))
        D.Distribution.set_default_validate_args(True)
        assert e.log_prob(t([math.nan, 0.0])) is not None  # kept the setting it had
        with pytest.raises(ValueError):
            D.Distribution.set_default_validate_args(1.5)
        with pytest.raises(ValueError, match="must be a Tensor"):
            D.Normal(0.0, 1.0).log_prob(0.5)
    assert MD.Distribution._validate_args is True


def test_default_is_debug_as_torch():
    """On by default, off under ``python -O`` (PyTorch's default is ``__debug__``; importing
    torch under -O here would take seconds, so its source is read instead)."""
    import inspect

    assert "_validate_args = __debug__" in inspect.getsource(TD.Distribution)
    code = "import manygrad.distributions as M; print(M.Distribution._validate_args)"
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False"], out.stderr[-2000:]


def test_subclass_without_constraints_warns_as_torch():
    for side in LIBS:
        D = LIBS[side][1]

        class Bare(D.Distribution):
            def __init__(self):
                super().__init__(validate_args=True)

            def log_prob(self, value):
                self._validate_sample(value)
                return value

        with pytest.warns(UserWarning, match="does not define `arg_constraints`"):
            d = Bare()
        with pytest.warns(UserWarning, match="does not define `support`"):
            d.log_prob(_env(side)["t"]([1.0]))


# ------------------------------------------------------------------ host reads

# constructor, value, host reads of the constructor with validate_args=False and with the
# default off: PyTorch's inner distributions check by the default setting (StudentT's Chi2,
# Multinomial's Categorical and Binomial, LKJCholesky's Beta), Wishart reads its df bound and
# the Cholesky factorization of a covariance reads its success back, validating or not
SYNC_CASES = [
    ("Normal(t([0., 1.]), t([1., 2.]))", "t([0.5, 1.])", 0, 0),
    ("LogNormal(t([0., 1.]), t([1., 2.]))", "t([0.5, 1.])", 0, 0),
    ("Beta(t([1., 2.]), t([1., 2.]))", "t([0.5, 0.2])", 0, 0),
    ("StudentT(t([3., 4.]))", "t([0.5, 1.])", 1, 0),
    ("Multinomial(3, probs=t([0.2, 0.8]))", "t([1., 2.])", 1, 0),
    ("MultivariateNormal(t([0., 1.]), covariance_matrix=t([[2., 1.], [1., 2.]]))", "t([0.5, 1.])",
     1, 1),
    ("Wishart(t(3.), covariance_matrix=t([[2., 1.], [1., 2.]]))", "t([[2., 1.], [1., 2.]])", 1, 1),
    ("Geometric(probs=t([0.3, 0.6]))", "t([1., 2.])", 0, 0),
    ("LogisticNormal(t([2., 3.]), t([1., 2.]))", "t([0.2, 0.3, 0.5])", 0, 0),
    ("LKJCholesky(2, t(2.))", "t([[1., 0.], [0.6, 0.8]])", 1, 0),
]  # fmt: skip


@pytest.mark.parametrize("ctor,value,arg_off,default_off", SYNC_CASES,
                         ids=[c[0][:12] for c in SYNC_CASES])  # fmt: skip
def test_one_host_read_per_call_on_the_fake_gpu(ctor, value, arg_off, default_off):
    """A constructor or log_prob reads its checks (nested ones too) back once."""
    stats = mg.backend.fake_stats
    env = {"D": MD, "t": lambda x: mg.tensor(x, device="fakegpu")}
    for arg, reads in (("", 1), (", validate_args=False", arg_off), ("default off", default_off)):
        MD.Distribution.set_default_validate_args(arg != "default off")
        v = eval(value, env)
        stats.reset()
        d = eval(f"D.{ctor[:-1]}{arg if arg.startswith(',') else ''})", env)
        assert stats.syncs == reads, (ctor, arg, stats.syncs)
        stats.reset()
        d.log_prob(v)
        assert stats.syncs == int(not arg), (ctor, arg, stats.syncs)


def test_mixture_log_prob_reads_its_and_its_components_checks_once():
    t = lambda x: mg.tensor(x, device="fakegpu")  # noqa: E731
    d = MD.MixtureSameFamily(MD.Categorical(t([0.5, 0.5])), MD.Gamma(t([1.0, 1.0]), t([1.0, 2.0])))
    stats = mg.backend.fake_stats
    stats.reset()
    d.log_prob(t([0.5, 1.0]).unsqueeze(-1))
    assert stats.syncs == 1


def test_deferred_checks_raise_first_in_torch_order_on_the_fake_gpu():
    """A failure made before the checks are read (the Cholesky factor of a matrix that is no
    covariance, an index out of range) gives way to the check's error, as in PyTorch."""
    t = lambda x: mg.tensor(x, device="fakegpu")  # noqa: E731
    with pytest.raises(ValueError, match="constraint PositiveDefinite"):
        MD.MultivariateNormal(t([0.0, 0.0]), covariance_matrix=t([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"support \(IntegerInterval"):
        MD.Categorical(t([0.2, 0.8])).log_prob(t([3]))
    with pytest.raises(ValueError, match="of distribution Normal"):
        MD.LogNormal(t([0.0]), t([-1.0]))


def test_cpu_fast_checks_agree_with_the_tensor_checks():
    # validation of CPU tensors runs each constraint with NumPy (host_all); it must say what
    # the constraint's tensor check says, edge values included
    from manygrad.distributions import constraints as C

    cases = [C.real, C.positive, C.nonnegative, C.unit_interval, C.boolean, C.simplex,
             C.nonnegative_integer, C.positive_integer, C.greater_than(-1.5),
             C.greater_than_eq(2.0), C.less_than(0.5), C.interval(-1.0, 1.0),
             C.half_open_interval(0.0, 1.0), C.integer_interval(0, 3),
             C.independent(C.positive, 1), C.independent(C.simplex, 1),
             C.greater_than(mg.tensor([0.0, 1.0, 2.0]))]  # fmt: skip
    edge = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 1e-7, -1e-7, float("inf"), float("-inf"),
            float("nan"), 1.0 - 1e-7]  # fmt: skip
    rng = np.random.default_rng(0)
    for c in cases:
        for _ in range(40):
            x = mg.tensor(rng.choice(edge, size=(2, 3)).astype(np.float32))
            if rng.random() < 0.3:
                x = x.softmax(-1)  # simplex-like rows
            got = C.host_all(c, x)
            assert got is not None, c
            assert got == bool(c.check(x).all()), (c, x)

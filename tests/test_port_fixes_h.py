"""Differences from PyTorch that the PixelCNN, Barlow Twins, DINO, KAN, PGD/TRADES and DDIM
port scripts (tests/ports/scripts) led to, each compared with PyTorch: clamp's rules for its
bounds (at least one; both tensors or both numbers, a 0-d tensor without grad passing as a
number) in every spelling, and the FutureWarning of the hook-based nn.utils.weight_norm."""

import warnings

import numpy as np
import pytest
import torch

import manygrad as mg

_X = np.array([-1.5, -0.2, 0.3, 2.0], np.float32)

# each: (lib, x) -> a clamp call
CLAMPS = {
    "clamp": lambda lib, x, lo, hi: lib.clamp(x, lo, hi),
    "clip": lambda lib, x, lo, hi: lib.clip(x, lo, hi),
    "method": lambda lib, x, lo, hi: x.clamp(min=lo, max=hi),
    "method_clip": lambda lib, x, lo, hi: x.clip(lo, hi),
    "inplace": lambda lib, x, lo, hi: x.clone().clamp_(lo, hi),
    "inplace_clip": lambda lib, x, lo, hi: x.clone().clip_(min=lo, max=hi),
}

# each: (lib) -> (min, max)
BOUNDS_ERRORS = [
    ("none", lambda lib: (None, None), RuntimeError),
    ("tensor_float", lambda lib: (lib.tensor([0.0] * 4), 1.0), TypeError),
    ("float_tensor", lambda lib: (-1.0, lib.tensor([1.0] * 4)), TypeError),
    ("int_tensor", lambda lib: (0, lib.tensor([1.0] * 4)), TypeError),
    ("grad_scalar_float", lambda lib: (lib.tensor(0.0, requires_grad=True), 1.0), TypeError),
]

BOUNDS_OK = [
    ("numbers", lambda lib: (-0.5, 0.5)),
    ("min_number", lambda lib: (0.1, None)),
    ("max_tensor", lambda lib: (None, lib.tensor([0.0, 1.0, 0.0, 1.0]))),
    ("tensors", lambda lib: (lib.tensor([-1.0, 0.0, 0.5, 0.0]), lib.tensor(1.0))),
    # a 0-d tensor that does not require grad passes as a number
    ("scalar_tensor_int", lambda lib: (lib.tensor(0.0), 1)),
    ("float_int_scalar", lambda lib: (-0.5, lib.tensor(1))),
]


def _raised(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return e
    return None


@pytest.mark.parametrize("spelling", list(CLAMPS))
@pytest.mark.parametrize("case,bounds,error", BOUNDS_ERRORS, ids=[b[0] for b in BOUNDS_ERRORS])
def test_clamp_bounds_errors_match_torch(device, spelling, case, bounds, error):
    call = CLAMPS[spelling]
    want = _raised(lambda: call(torch, torch.tensor(_X), *bounds(torch)))
    assert isinstance(want, error), want  # the PyTorch behaviour this test pins
    lo, hi = (b.to(device) if isinstance(b, mg.Tensor) else b for b in bounds(mg))
    # NOTE: clamp accepted a 1-d tensor bound with a number one (or failed with an AttributeError),
    # and clamp_() with no bound returned the input unchanged
    with pytest.raises(error, match="clamp"):
        call(mg, mg.tensor(_X, device=device), lo, hi)


@pytest.mark.parametrize("spelling", list(CLAMPS))
@pytest.mark.parametrize("case,bounds", BOUNDS_OK, ids=[b[0] for b in BOUNDS_OK])
def test_clamp_accepted_bounds_still_match_torch(device, spelling, case, bounds):
    call = CLAMPS[spelling]
    want = call(torch, torch.tensor(_X), *bounds(torch)).numpy()
    lo, hi = (b.to(device) if isinstance(b, mg.Tensor) else b for b in bounds(mg))
    got = call(mg, mg.tensor(_X, device=device), lo, hi)
    np.testing.assert_array_equal(got.cpu().numpy(), want)


def test_clamp_of_integers_by_a_scalar_tensor_and_a_number_matches_torch(device):
    x = [1, 5, 9]
    want = torch.clamp(torch.tensor(x), torch.tensor(2.5), 4)
    got = mg.clamp(mg.tensor(x, device=device), mg.tensor(2.5, device=device), 4)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


def test_hook_weight_norm_warns_as_torch_does():
    with warnings.catch_warnings(record=True) as want:
        warnings.simplefilter("always")
        torch.nn.utils.weight_norm(torch.nn.Linear(3, 2))
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        m = mg.nn.utils.weight_norm(mg.nn.Linear(3, 2))
    assert [w.category for w in want] == [FutureWarning]
    assert [w.category for w in got] == [FutureWarning]
    assert "parametrizations.weight_norm" in str(got[0].message)
    assert got[0].filename == __file__  # points at the caller, as PyTorch's does
    assert sorted(n for n, _ in m.named_parameters()) == ["bias", "weight_g", "weight_v"]

"""Tensor methods and attributes against PyTorch's: each case runs the same code on
``torch`` and on ``manygrad`` and compares the results (type, dtype, shape, values) or the
error (manygrad's must be an instance of PyTorch's error type)."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import torch

import manygrad as mg


def _norm(r, mod, seen=0):
    if isinstance(r, mod.Tensor):
        v = np.asarray(r.detach().cpu().tolist())
        return ("m", str(r.dtype).split(".")[-1], tuple(r.shape), v, r.requires_grad)
    if type(r) in (tuple, list) or type(r).__name__ == "Size":
        return (type(r).__name__, [_norm(x, mod) for x in r])
    if isinstance(r, np.ndarray):
        return ("nd", str(r.dtype), r.shape, r.tolist())
    return (type(r).__name__, r)


def _run(fn, mod, dev):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _norm(fn(mod, dev if mod is mg else "cpu"), mod)
    except Exception as e:  # noqa: BLE001 - the error is what is compared
        return ("ERR", e)


def _same(a, b) -> bool:
    if a[0] == "ERR" or b[0] == "ERR":
        return a[0] == b[0] and isinstance(b[1], type(a[1]))
    if a[0] == "m":
        return a[:3] == b[:3] and a[4] == b[4] and np.allclose(a[3], b[3], equal_nan=True)
    if a[0] in ("tuple", "list", "Size") and a[0] == b[0]:
        return len(a[1]) == len(b[1]) and all(_same(x, y) for x, y in zip(a[1], b[1]))
    return a == b


def check(fn, dev="cpu"):
    want, got = _run(fn, torch, dev), _run(fn, mg, dev)
    assert _same(want, got), f"\ntorch:     {want}\nmanygrad:  {got}"


def _x(m, d, dt=None):
    return m.arange(6, dtype=dt or m.float32, device=d).reshape(2, 3)


def _leaf(m, d):
    return m.ones(2, 3, device=d, requires_grad=True)


def _set(obj, name, value):
    setattr(obj, name, value)
    return getattr(obj, name)


def _mutated(x, fn):
    fn(x)
    return x


# one line per case: code that runs the same on torch and manygrad (m is the module, d the
# device; torch always runs on the CPU)
DEVICE_CASES = {
    # to(): every form, copy semantics, bad arguments
    "to_other": lambda m, d: _x(m, d).to(m.zeros(1, dtype=m.int64, device=d)),
    "to_dtype_kw": lambda m, d: _x(m, d).to(dtype=m.float64),
    "to_device_dtype": lambda m, d: _x(m, d).to(d, m.float64),
    "to_non_blocking_positional": lambda m, d: _x(m, d).to(d, m.float64, True),
    "to_copy_positional_is_new": lambda m, d: (lambda x: x.to(m.float32, False, True) is x)(
        _x(m, d)
    ),
    "to_no_copy_is_same": lambda m, d: (lambda x: x.to(m.float32) is x)(_x(m, d)),
    "to_copy_kw_is_new": lambda m, d: (lambda x: x.to(m.float32, copy=True) is x)(_x(m, d)),
    "to_copy_does_not_alias": lambda m, d: _mutated(_x(m, d), lambda x: x.to(d, copy=True).add_(1)),
    "to_bad_keyword": lambda m, d: _x(m, d).to(foo=1),
    "to_too_many": lambda m, d: _x(m, d).to(d, m.float32, False, False, 1),
    "to_python_type": lambda m, d: _x(m, d).to(int),
    "type_as": lambda m, d: _x(m, d).type_as(m.zeros(1, dtype=m.int16)),
    "new_empty_is_1d": lambda m, d: _x(m, d).new().shape,
    "new_zeros_tuple": lambda m, d: _x(m, d, m.int32).new_zeros((2, 3)),
    "new_full": lambda m, d: _x(m, d, m.int32).new_full((2,), 3),
    # Python protocol methods
    "item_many_elements": lambda m, d: _x(m, d).item(),
    "item_empty": lambda m, d: m.zeros(0, device=d).item(),
    "index_of_bool": lambda m, d: [1, 2, 3][m.tensor(True, device=d)],
    "index_of_float": lambda m, d: [1, 2, 3][m.tensor(1.0, device=d)],
    "contains_number": lambda m, d: 4.0 in _x(m, d),
    "contains_tensor": lambda m, d: m.tensor([9.0, 2.0], device=d) in _x(m, d),
    "contains_str": lambda m, d: "a" in _x(m, d),
    "contains_list": lambda m, d: [1] in _x(m, d),
    "len_0d": lambda m, d: len(m.tensor(1.0, device=d)),
    "iter_rows": lambda m, d: list(_x(m, d)),
    "bool_many": lambda m, d: bool(_x(m, d)),
    "format_0d": lambda m, d: f"{m.tensor(2.5, device=d):.2f}",
    "hash_is_id": lambda m, d: (lambda x: hash(x) == id(x))(_x(m, d)),
    "eq_none": lambda m, d: _x(m, d) == None,  # noqa: E711
    # grad and data assignment
    "grad_ok": lambda m, d: _set(_leaf(m, d), "grad", m.ones(2, 3, device=d)),
    "grad_none": lambda m, d: _set(_leaf(m, d), "grad", None),
    "grad_bad_shape": lambda m, d: _set(_leaf(m, d), "grad", m.ones(3, device=d)),
    "grad_bad_dtype": lambda m, d: _set(_leaf(m, d), "grad", m.ones(2, 3, dtype=m.float64)),
    "grad_not_tensor": lambda m, d: _set(_leaf(m, d), "grad", 1.0),
    "grad_ndarray": lambda m, d: _set(_leaf(m, d), "grad", np.ones((2, 3), np.float32)),
    "grad_of_int_tensor": lambda m, d: _set(m.ones(2, dtype=m.int64, device=d), "grad", m.ones(2)),
    "hook_changes_shape": lambda m, d: (
        lambda x: (x.register_hook(lambda g: g.sum()), (x * 2).sum().backward(), x.grad)
    )(_leaf(m, d))[2],
    "data_not_tensor": lambda m, d: _set(_leaf(m, d), "data", np.zeros(3)),
    "data_int_on_requires_grad": lambda m, d: _set(_leaf(m, d), "data", m.zeros(2, dtype=m.int64)),
    "data_new_shape": lambda m, d: _set(_leaf(m, d), "data", m.zeros(5, device=d)).shape,
    "retain_grad_nonleaf": lambda m, d: (
        lambda y: (y.retain_grad(), y.sum().backward(), y.retains_grad, y.grad)[2:]
    )(_leaf(m, d) * 2),
    "requires_grad_int": lambda m, d: m.ones(2, dtype=m.int64, device=d).requires_grad_(),
    # layout
    "mT_of_1d": lambda m, d: m.zeros(2, device=d).mT,
    "clone_keeps_channels_last": lambda m, d: (
        m.zeros(2, 3, 4, 5, device=d).to(memory_format=m.channels_last).clone().stride()
    ),
    "clone_keeps_transpose": lambda m, d: m.zeros(3, 4, device=d).t().clone().stride(),
    "clone_of_slice": lambda m, d: m.zeros(4, 6, device=d)[:, ::2].clone().stride(),
    "clone_to_format": lambda m, d: (
        m.zeros(2, 3, 4, 5, device=d).clone(memory_format=m.channels_last).stride()
    ),
    "clone_transpose_grad": lambda m, d: (
        lambda x: ((x.t().clone() * m.arange(3.0, device=d)).sum().backward(), x.grad)[1]
    )(m.ones(3, 4, device=d, requires_grad=True)),
    "stride_dim": lambda m, d: m.zeros(2, 3, 4, device=d).stride(dim=1),
    "dim_order_permuted": lambda m, d: m.zeros(2, 3, 4, device=d).permute(2, 0, 1).dim_order(),
    "nbytes_itemsize": lambda m, d: (
        m.zeros(2, 3, dtype=m.float16, device=d).nbytes,
        m.zeros(1, dtype=m.float64, device=d).itemsize,
    ),  # fmt: skip
    "softmax_dtype": lambda m, d: _x(m, d).softmax(-1, dtype=m.float64),
    "log_softmax_dim_kw": lambda m, d: _x(m, d).log_softmax(dim=1),
    "copy_broadcast": lambda m, d: _x(m, d).copy_(m.ones(3, device=d)),
    "copy_bad_shape": lambda m, d: _x(m, d).copy_(m.ones(4, device=d)),
    # indexing
    "getitem_uint8_mask": lambda m, d: _x(m, d)[m.tensor([1, 0], dtype=m.uint8, device=d)],
    "getitem_bool_mask": lambda m, d: _x(m, d)[_x(m, d) > 2],
    "getitem_tensors_on_two_dims": lambda m, d: m.arange(24, device=d).reshape(2, 3, 4)[
        m.tensor([0, 1], device=d), :, m.tensor([1, 2], device=d)
    ],
    "getitem_negative_step": lambda m, d: _x(m, d)[::-1],
    "getitem_out_of_range": lambda m, d: _x(m, d)[5],
    "setitem_broadcast_cast": lambda m, d: _mutated(
        _x(m, d, m.int64), lambda x: x.__setitem__((slice(None), 0), m.tensor(7.9, device=d))
    ),
    "setitem_complex_number": lambda m, d: _mutated(_x(m, d), lambda x: x.__setitem__(0, 1j)),
    "setitem_real_complex_number": lambda m, d: _mutated(
        _x(m, d), lambda x: x.__setitem__(0, 2 + 0j)
    ),
    "setitem_bad_broadcast": lambda m, d: _mutated(
        _x(m, d), lambda x: x.__setitem__((slice(None), 0), m.ones(3, device=d))
    ),
}


@pytest.mark.parametrize("name", sorted(DEVICE_CASES))
def test_tensor_method_matches_pytorch(name, device):
    check(DEVICE_CASES[name], device)


HOST_CASES = {
    "array_copy_default_does_not_alias": lambda m, d: _mutated(
        m.zeros(3), lambda x: np.array(x).__setitem__(0, 5)
    ),
    "asarray_shares": lambda m, d: _mutated(m.zeros(3), lambda x: np.asarray(x).__setitem__(0, 5)),
    "array_dtype": lambda m, d: np.asarray(m.zeros(2), dtype=np.int32),
    "numpy_force": lambda m, d: m.zeros(2, requires_grad=True).numpy(force=True),
    "numpy_requires_grad": lambda m, d: m.zeros(2, requires_grad=True).numpy(),
    "tolist_types": lambda m, d: [
        type(v).__name__ for v in m.tensor([1, 2], dtype=m.int16).tolist()
    ],
    "deepcopy_keeps_grad": lambda m, d: (
        lambda x: (_set(x, "grad", m.full((2, 3), 7.0)), copy.deepcopy(x).grad)[1]
    )(_leaf(m, d)),
    "deepcopy_memo": lambda m, d: (lambda x: (lambda c: c[0] is c[1])(copy.deepcopy([x, x])))(
        m.ones(2)
    ),
    "pickle_requires_grad": lambda m, d: pickle.loads(pickle.dumps(_leaf(m, d))),
    "pickle_attribute": lambda m, d: (
        pickle.loads(pickle.dumps(_mutated(m.ones(2), lambda x: setattr(x, "foo", 5)))).foo
    ),  # fmt: skip
    "floordiv_signs": lambda m, d: m.tensor([-7, 7, -7, 7]) // m.tensor([2, 2, -2, -2]),
    "mod_signs": lambda m, d: m.tensor([-7.5, 7.5]) % -2,
    "rpow_int": lambda m, d: 2 ** m.tensor([0, 3]),
    "pow_float_exponent_of_int": lambda m, d: m.tensor([4, 9]) ** 0.5,
    "shift_bool": lambda m, d: m.tensor([True, False]) << 1,
    "and_bool": lambda m, d: m.tensor([True, False]) & True,
    "reflected_numpy_scalar": lambda m, d: np.float64(2.5) * m.tensor([1, 2]),
    "rmatmul_list": lambda m, d: [1.0, 2.0] @ m.ones(2, 3),
}


@pytest.mark.parametrize("name", sorted(HOST_CASES))
def test_tensor_host_method_matches_pytorch(name):
    check(HOST_CASES[name])


def test_uint8_index_warns_as_pytorch():
    x = mg.arange(4.0)
    with pytest.warns(UserWarning, match="uint8"):
        out = x[mg.tensor([1, 0, 1, 0], dtype=mg.uint8)]
    np.testing.assert_array_equal(out.numpy(), [0.0, 2.0])

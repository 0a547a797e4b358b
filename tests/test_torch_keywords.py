"""Every function and method takes its arguments by PyTorch's keyword names.

A PyTorch program calls ``torch.sum(input=x, dim=1)``, ``torch.pow(x, exponent=2)``,
``F.relu(x, inplace=True)`` or ``x.split(split_size=2)``; manygrad must accept the same
names. The names come from PyTorch itself: a Python signature where it has one, else the
operator schemas behind the builtin (``self`` is ``input``), leaving out ``out=`` forms.
"""

import inspect

import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

# names that manygrad leaves out on purpose, each with the reason
_NOT_TAKEN = {
    "out",  # out= forms: manygrad returns new tensors (docs/porting.md)
    "memory_format",  # taken where it matters (to, contiguous, *_like); a no-op elsewhere
    "layout",
    "pin_memory",
    "names",  # named tensors
    "cudnn_enabled",  # cuDNN switches of the aten ops (batch_norm, group_norm, layer_norm)
    "cudnn_enable",
    "out_dtype",  # mm/bmm/addmm(out_dtype=): CUDA-only in PyTorch
    "implicit",  # expand's TorchScript-only switch
    "from",  # random_/uniform_(from=...) is a syntax error in Python; positional there
    "qtensor",  # a TorchScript schema's name of dequantize's tensor; Python refuses it
}
# functions whose PyTorch keyword names manygrad does not mirror yet, with the reason
_KNOWN = {
    "torch.compile": "manygrad.compile takes the options its eager runner uses",
    "torch.save": "_disable_byteorder_record is a private switch",
    "torch.einsum": "the schema's 'a' is the TorchScript form; Python takes operands",
}
_SCALAR_OVERLOADS = ("int", "float", "complex", "bool", "str", "Scalar_Scalar", "Dimname")


def _schema_names(name: str, method: bool):
    try:
        schemas = torch._C._jit_get_schemas_for_operator("aten::" + name)
    except RuntimeError:
        return None
    names = set()
    for s in schemas:
        over = s.overload_name
        if "out" in over.split("_") or over.startswith(_SCALAR_OVERLOADS) or "dimname" in over:
            continue
        if not s.arguments or str(s.arguments[0].type) not in ("Tensor", "Tensor[]", "Tensor?"):
            continue  # a list or scalar overload (TorchScript's)
        for a in s.arguments:
            ai = a.alias_info
            if a.kwarg_only and ai is not None and ai.is_write:
                continue  # an output buffer
            names.add("input" if a.name == "self" else a.name)
    if method:
        names.discard("input")
    return names or None


def _torch_names(obj, qualname: str, method: bool):
    space, name = qualname.rsplit(".", 1)
    prefix = {"torch.linalg": "linalg_", "torch.fft": "fft_", "torch.special": "special_"}
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return _schema_names(prefix.get(space, "") + name, method)
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    names = {p.name for p in sig.parameters.values() if p.kind not in kinds}
    names -= {"self"} if method else set()
    return {n for n in names if not n.startswith("_")} or None


def _missing(ours, want):
    try:
        params = inspect.signature(ours).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return set()  # takes any keyword; the function checks them itself
    by_name = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    taken = {n for n, p in params.items() if p.kind in by_name}  # NOTE: not *shape
    return {n for n in want if n not in taken and n not in _NOT_TAKEN}


def _cases():
    spaces = [
        ("torch", torch, mg, False),
        ("torch.nn.functional", torch.nn.functional, mg.nn.functional, False),
        ("torch.linalg", torch.linalg, mg.linalg, False),
        ("torch.fft", torch.fft, mg.fft, False),
        ("torch.special", torch.special, mg.special, False),
        ("torch.Tensor", torch.Tensor, mg.Tensor, True),
    ]
    for label, theirs, ours, method in spaces:
        for name in sorted(dir(theirs)):
            if name.startswith("_"):
                continue
            t, o = getattr(theirs, name, None), getattr(ours, name, None)
            if not callable(t) or not callable(o) or isinstance(t, type):
                continue
            want = _torch_names(t, f"{label}.{name}", method)
            if want:  # NOTE: else PyTorch gives no names for it (no signature, no schema)
                yield pytest.param(f"{label}.{name}", want, o, id=f"{label}.{name}")


@pytest.mark.parametrize("qualname, want, ours", list(_cases()))
def test_takes_pytorch_keyword_names(qualname, want, ours):
    if qualname in _KNOWN:
        pytest.skip(_KNOWN[qualname])
    missing = _missing(ours, want)
    assert not missing, f"{qualname} does not take {sorted(missing)} (PyTorch: {sorted(want)})"


def test_keyword_calls_compute_what_positional_calls_do():
    x = mg.arange(6.0).reshape(2, 3)
    torch_x = torch.arange(6.0).reshape(2, 3)
    calls = [
        ("sum", dict(input=x, dim=1), dict(input=torch_x, dim=1)),
        ("pow", dict(input=x, exponent=2), dict(input=torch_x, exponent=2)),
        ("add", dict(input=x, other=x, alpha=2), dict(input=torch_x, other=torch_x, alpha=2)),
        ("transpose", dict(input=x, dim0=0, dim1=1), dict(input=torch_x, dim0=0, dim1=1)),
        ("clamp", dict(input=x, min=1, max=4), dict(input=torch_x, min=1, max=4)),
    ]
    for name, ours, theirs in calls:
        got = getattr(mg, name)(**ours)
        want = getattr(torch, name)(**theirs)
        assert got.tolist() == want.tolist(), name


def test_top_level_embedding_takes_the_table_first():
    # NOTE: torch.embedding(weight, indices) is the op; F.embedding(input, weight) the layer's
    w, idx = mg.arange(15.0).reshape(5, 3), mg.tensor([[0, 4], [2, 2]])
    tw, tidx = torch.arange(15.0).reshape(5, 3), torch.tensor([[0, 4], [2, 2]])
    got = mg.embedding(weight=w, indices=idx, padding_idx=2)
    assert got.tolist() == torch.embedding(weight=tw, indices=tidx, padding_idx=2).tolist()
    assert mg.nn.functional.embedding(idx, w).tolist() == got.tolist()


def test_tensor_methods_take_sizes_by_keyword():
    x, tx = mg.arange(6.0).reshape(2, 3), torch.arange(6.0).reshape(2, 3)
    calls = [("reshape", dict(shape=(3, 2))), ("permute", dict(dims=(1, 0))),
             ("flip", dict(dims=(0,))), ("new_zeros", dict(size=(2, 2))),
             ("new_ones", dict(size=(1, 2))), ("sum_to_size", dict(size=(1, 3))),
             ("view", dict(size=(6,))), ("expand", dict(size=(2, 2, 3)))]  # fmt: skip
    for name, kw in calls:
        assert getattr(x, name)(**kw).tolist() == getattr(tx, name)(**kw).tolist(), name
    with pytest.raises(TypeError, match="shape"):
        x.reshape(6, shape=(6,))  # one form a call, as PyTorch

"""Differences from PyTorch that the DeepAR, S4D and Transformer-XL port scripts
(tests/ports/scripts) led to, each compared with PyTorch: recurrent layers' _all_weights
names, attributes set on tensors and parameters, and the memory layout of torch.cat's result
(row-major unless every input is channels-last), on which a later .view depends."""

import copy
import pickle

import numpy as np
import pytest
import torch

import manygrad as mg


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


RNNS = [
    ("LSTM", dict(num_layers=2)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("RNN", dict(num_layers=1, bias=False)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3)),
]


@pytest.mark.parametrize("kind,kw", RNNS, ids=[f"{k}-{i}" for i, (k, _) in enumerate(RNNS)])
def test_rnn_all_weights_names_match_pytorch(kind, kw):
    want = getattr(torch.nn, kind)(4, 5, **kw)._all_weights
    got = getattr(mg.nn, kind)(4, 5, **kw)._all_weights
    assert got == want


def test_forget_gate_bias_fill_through_all_weights():
    """DeepAR's init: the forget-gate quarter of every LSTM bias set to one, by name."""
    outs = []
    for lib in (torch, mg):
        lstm = lib.nn.LSTM(3, 4, num_layers=2)
        with lib.no_grad():
            for names in lstm._all_weights:
                for name in filter(lambda n: "bias" in n, names):
                    bias = getattr(lstm, name)
                    bias.zero_()
                    n = bias.size(0)
                    bias.data[n // 4 : n // 2].fill_(1.0)
        outs.append({k: v.detach().numpy() for k, v in lstm.named_parameters() if "bias" in k})
    assert outs[0].keys() == outs[1].keys()
    for k in outs[0]:
        np.testing.assert_array_equal(outs[1][k], outs[0][k])


def test_attributes_on_parameters_and_tensors():
    """S4D's setup_optimizer reads an `_optim` dict that the model set on its parameters."""
    got = {}
    for lib in (torch, mg):
        p = lib.nn.Parameter(lib.zeros(3))
        p._optim = {"lr": 1e-3, "weight_decay": 0.0}
        t = lib.ones(2)
        t.tag = "memory"
        got[lib.__name__] = (
            p._optim, hasattr(p, "_optim"), getattr(p, "_other", None), t.tag,
            hasattr(t.detach(), "tag"), hasattr(t.clone(), "tag"),
            getattr(copy.deepcopy(t), "tag", None), hasattr(copy.deepcopy(p), "_optim"),
            getattr(pickle.loads(pickle.dumps(t)), "tag", None),
        )  # fmt: skip
    assert got["manygrad"] == got["torch"]
    with pytest.raises(AttributeError):
        mg.zeros(1).missing  # noqa: B018 - an unset attribute still raises


def test_as_subclass_does_not_carry_attributes():
    for lib in (torch, mg):

        class Sub(lib.Tensor):
            pass

        t = lib.zeros(2)
        t.tag = 1
        assert not hasattr(t.as_subclass(Sub), "tag")


# each: (name, inputs as numpy arrays made from shape and layout, dim)
def _layouts(lib, device=None):
    kw = {} if device is None else {"device": device}
    a = lib.tensor(_rand(3, 4), **kw).t()  # (4, 3) transposed
    b = lib.tensor(_rand(3, 4, seed=1), **kw).t()
    x = lib.tensor(_rand(2, 3, 4, 5), **kw)
    y = lib.tensor(_rand(16, 8, 2, 16, seed=2), **kw).permute(0, 3, 1, 2)  # like einsum's
    z = lib.zeros(16, 1, 8, 2, **kw)
    cl = lib.tensor(_rand(2, 3, 4, 5, seed=3), **kw).contiguous(memory_format=lib.channels_last)
    return {
        "transposed_dim0": ([a, b], 0),
        "transposed_dim1": ([a, b], 1),
        "mixed_4d": ([z, y], 1),
        "permuted_4d": ([y, y], 1),
        "channels_last": ([cl, cl], 1),
        "channels_last_and_plain": ([cl, x], 1),
        "stack_transposed": (None, None),
    }


CASES = ["transposed_dim0", "transposed_dim1", "mixed_4d", "permuted_4d", "channels_last",
         "channels_last_and_plain", "stack_transposed"]  # fmt: skip


def _cat(lib, case, device=None):
    if case == "stack_transposed":
        a, b = _layouts(lib, device)["transposed_dim0"][0]
        return lib.stack([a, b], 0)
    tensors, dim = _layouts(lib, device)[case]
    return lib.cat(tensors, dim)


@pytest.mark.parametrize("case", CASES)
def test_cat_result_layout_matches_pytorch(case, device):
    want = _cat(torch, case)
    got = _cat(mg, case, device)
    assert got.stride() == want.stride()
    assert got.is_contiguous() == want.is_contiguous()
    np.testing.assert_array_equal(got.cpu().numpy(), want.numpy())


def test_rel_shift_view_after_cat(device):
    """Transformer-XL's _rel_shift: cat a zero column to einsum's (permuted) result, view it
    to the transposed shape; values and gradients as in PyTorch."""

    def rel_shift(lib, kw):
        q = lib.tensor(_rand(5, 2, 2, 3), requires_grad=True, **kw)
        k = lib.tensor(_rand(5, 2, 3, seed=1), requires_grad=True, **kw)
        x = lib.einsum("ibnd,jnd->ijbn", q, k)
        zero_pad = lib.zeros((x.size(0), 1) + x.size()[2:], **kw)
        x_padded = lib.cat([zero_pad, x], dim=1)
        x_padded = x_padded.view(x.size(1) + 1, x.size(0), *x.size()[2:])
        out = x_padded[1:].view_as(x)
        (out * lib.tensor(_rand(*out.shape, seed=2), **kw)).sum().backward()
        return out.detach().cpu().numpy(), q.grad.cpu().numpy(), k.grad.cpu().numpy()

    want = rel_shift(torch, {})
    got = rel_shift(mg, {"device": device})
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)

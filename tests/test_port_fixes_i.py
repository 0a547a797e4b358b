"""Differences from PyTorch that the NLP-structure port scripts (tests/ports/scripts: BiLSTM-CRF,
pointer network, pointer-generator, sentence VAE, Reformer, character CNN) led to, each
compared with PyTorch: class-index cross entropy and NLL on an input whose memory is not
row-major (a ``logits.transpose(1, 2)`` of a sequence model's output)."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


CASES = [
    ("cross_entropy", (4, 6, 5), dict()),
    ("cross_entropy", (4, 6, 5), dict(reduction="sum", label_smoothing=0.1)),
    ("cross_entropy", (4, 6, 5), dict(reduction="none", ignore_index=2)),
    ("cross_entropy", (5, 7), dict(weight=True)),
    ("nll_loss", (4, 6, 5), dict(weight=True)),
]


@pytest.mark.parametrize("name,shape,kw", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_class_losses_on_a_transposed_input_match_pytorch(device, name, shape, kw):
    # the input is (N, S, C) or (C, N) in memory, handed over as (N, C, S) or (N, C)
    x = _rand(*shape)
    c = shape[-1] if len(shape) == 3 else shape[0]
    rng = np.random.default_rng(1)
    t = rng.integers(0, c, shape[:2] if len(shape) == 3 else shape[1])
    w = rng.uniform(0.5, 2.0, c).astype(np.float32) if kw.get("weight") else None

    def run(lib, dev=None):
        xt = lib.tensor(x, requires_grad=True) if dev is None else mg.tensor(x, device=dev)
        if dev is not None:
            xt.requires_grad_()
        src = lib.nn.functional.log_softmax(xt, dim=-1) if name == "nll_loss" else xt
        inp = src.transpose(1, 2) if len(shape) == 3 else src.t()
        args = dict(kw)
        if w is not None:
            args["weight"] = lib.tensor(w) if dev is None else mg.tensor(w, device=dev)
        target = lib.tensor(t) if dev is None else mg.tensor(t, device=dev)
        loss = getattr(lib.nn.functional, name)(inp, target, **args)
        loss.backward(lib.ones_like(loss))
        return loss.detach().cpu().numpy(), xt.grad.cpu().numpy()

    want_loss, want_grad = run(torch)
    got_loss, got_grad = run(mg, device)
    np.testing.assert_allclose(got_loss, want_loss, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-6)

"""Differences from PyTorch that the TRPO, torch.func meta-learning, EmbeddingBag recommender,
Perceiver and optical-flow port scripts (tests/ports/scripts) led to, each compared with
PyTorch."""

import numpy as np
import pytest
import torch

import manygrad as mg


def _tied_lm(lib):
    class TiedLM(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = lib.nn.Embedding(5, 3)
            self.out = lib.nn.Linear(3, 5, bias=False)
            self.out.weight = self.emb.weight  # the output layer shares the embedding table

        def forward(self, x):
            return self.out(self.emb(x))

    model = TiedLM()
    w = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    with lib.no_grad():
        model.emb.weight.copy_(lib.tensor(w))
    return model


@pytest.mark.parametrize(
    "names,tie_weights",
    [
        (["emb.weight"], True),
        (["out.weight"], True),
        (["emb.weight"], False),
        (["emb.weight", "out.weight"], False),
    ],  # fmt: skip
)
def test_functional_call_replaces_tied_weights_together(names, tie_weights):
    new = np.linspace(-1.0, 1.0, 15, dtype=np.float32).reshape(5, 3)
    outs = []
    for lib in (torch, mg):
        model = _tied_lm(lib)
        given = {n: lib.tensor(new) * (i + 1) for i, n in enumerate(names)}
        x = lib.tensor([0, 1, 3, 3])
        outs.append(
            lib.func.functional_call(model, given, (x,), tie_weights=tie_weights).detach().numpy()
        )
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-6, atol=1e-6)


def test_functional_call_gradient_reaches_both_uses_of_a_tied_weight():
    new = np.linspace(-1.0, 1.0, 15, dtype=np.float32).reshape(5, 3)
    grads = []
    for lib in (torch, mg):
        model = _tied_lm(lib)
        x = lib.tensor([0, 1, 3, 3])

        def loss(p, lib=lib, model=model, x=x):
            return lib.func.functional_call(model, p, (x,)).pow(2).sum()

        grads.append(lib.func.grad(loss)({"emb.weight": lib.tensor(new)})["emb.weight"].numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_functional_call_refuses_different_values_for_tied_weights():
    for lib in (torch, mg):
        model = _tied_lm(lib)
        given = {"emb.weight": lib.ones(5, 3), "out.weight": lib.zeros(5, 3)}
        with pytest.raises(ValueError, match="tied"):
            lib.func.functional_call(model, given, (lib.tensor([0]),))


@pytest.mark.parametrize(
    "names,tie_weights",
    [(["emb.weight"], False), (["emb.weight", "extra"], True)],
    ids=["untied-missing", "unexpected"],
)
def test_functional_call_strict_key_errors_are_runtime_errors(names, tie_weights):
    for lib in (torch, mg):
        model = _tied_lm(lib)
        given = {n: lib.ones(5, 3) for n in names}
        with pytest.raises(RuntimeError):
            lib.func.functional_call(
                model, given, (lib.tensor([0]),), strict=True, tie_weights=tie_weights
            )
    # with tied weights one name stands for both
    model = _tied_lm(mg)
    out = mg.func.functional_call(model, {"out.weight": mg.ones(5, 3)}, (mg.tensor([0]),),
                                  strict=True)  # fmt: skip
    np.testing.assert_allclose(out.detach().numpy(), np.full((1, 5), 3.0))


def _bag_reference(weight, idx, offsets, mode, padding_idx):
    """PyTorch's F.embedding with scale_grad_by_freq, summed or averaged per bag by hand.

    NOTE: PyTorch 2.13's CPU embedding_bag divides by the wrong count when repeated and
    single ids mix (pytorch/pytorch#190063); its embedding path counts correctly."""
    rows = torch.nn.functional.embedding(idx, weight, padding_idx, scale_grad_by_freq=True)
    ends = offsets.tolist()[1:] + [len(idx)]
    out = []
    for start, end in zip(offsets.tolist(), ends):
        keep = [i for i in range(start, end) if padding_idx is None or idx[i] != padding_idx]
        bag = rows[keep].sum(0) if keep else torch.zeros(weight.shape[1])
        out.append(bag / max(len(keep), 1) if mode == "mean" else bag)
    return torch.stack(out)


@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_bag_scale_grad_by_freq(mode, padding_idx):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(10, 4)).astype(np.float32)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])
    offsets = np.array([0, 3, 3, 7])
    up = rng.normal(size=(4, 4)).astype(np.float32)

    tw = torch.tensor(w, requires_grad=True)
    want = _bag_reference(tw, torch.tensor(idx), torch.tensor(offsets), mode, padding_idx)
    (want * torch.tensor(up)).sum().backward()

    bag = mg.nn.EmbeddingBag.from_pretrained(
        mg.tensor(w), freeze=False, mode=mode, scale_grad_by_freq=True, padding_idx=padding_idx
    )
    got = bag(mg.tensor(idx), mg.tensor(offsets))
    (got * mg.tensor(up)).sum().backward()
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bag.weight.grad.numpy(), tw.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_bag_scale_grad_by_freq_matches_pytorch_where_its_counts_are_right():
    # every id once or every repeated id sorted last: PyTorch's CPU kernel is right here
    idx, offsets = np.array([[3, 1, 7], [7, 2, 3]]), None
    w = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    grads = []
    for lib in (torch, mg):
        weight = lib.tensor(w, requires_grad=True)
        out = lib.nn.functional.embedding_bag(
            lib.tensor(idx), weight, offsets, mode="sum", scale_grad_by_freq=True
        )
        (out * lib.arange(6.0).reshape(2, 3)).sum().backward()
        grads.append(weight.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)


def test_embedding_bag_refuses_scale_grad_by_freq_in_max_mode():
    for lib in (torch, mg):
        with pytest.raises(ValueError, match="max mode does not support scaling"):
            lib.nn.functional.embedding_bag(
                lib.tensor([1, 2]), lib.ones(4, 2), lib.tensor([0]), mode="max",
                scale_grad_by_freq=True,
            )  # fmt: skip

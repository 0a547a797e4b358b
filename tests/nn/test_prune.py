"""nn.utils.prune against PyTorch: the same masks (deterministic methods), names, state
dicts, iterative pruning among what is left, global pruning, removal and training."""

import numpy as np
import pytest

import manygrad as mg
from manygrad.nn.utils import prune as MP

torch = pytest.importorskip("torch")
TP = pytest.importorskip("torch.nn.utils.prune")


def _pair(seed=0, conv=True):
    torch.manual_seed(seed)
    t = torch.nn.Conv2d(3, 6, 3) if conv else torch.nn.Linear(7, 5)
    m = mg.nn.Conv2d(3, 6, 3) if conv else mg.nn.Linear(7, 5)
    m.load_state_dict({k: mg.tensor(v.numpy()) for k, v in t.state_dict().items()})
    return m, t


def _same(m, t, atol=1e-7):
    sm, st = m.state_dict(), t.state_dict()
    assert list(sm) == list(st)
    for k in sm:
        np.testing.assert_allclose(sm[k].numpy(), st[k].numpy(), rtol=1e-6, atol=atol, err_msg=k)
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy(), atol=atol)


STEPS = [
    ("l1 fraction", lambda lib, mod: lib.l1_unstructured(mod, "weight", amount=0.3)),
    ("l1 count", lambda lib, mod: lib.l1_unstructured(mod, "weight", amount=7)),
    ("ln2 dim0", lambda lib, mod: lib.ln_structured(mod, "weight", amount=2, n=2, dim=0)),
    ("ln1 dim1", lambda lib, mod: lib.ln_structured(mod, "weight", amount=0.34, n=1, dim=1)),
    ("ln inf", lambda lib, mod: lib.ln_structured(mod, "weight", amount=1, n=float("inf"), dim=0)),
    ("identity", lambda lib, mod: lib.identity(mod, "weight")),
]


@pytest.mark.parametrize("name,step", STEPS, ids=[n for n, _ in STEPS])
def test_single_pruning_equals_pytorchs(name, step):
    m, t = _pair()
    step(MP, m)
    step(TP, t)
    _same(m, t)
    assert MP.is_pruned(m) and isinstance(m.weight_orig, mg.nn.Parameter)
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in t.named_parameters()]


@pytest.mark.parametrize("first,second", [(0, 2), (2, 0), (0, 1), (2, 3), (3, 4)])
def test_iterative_pruning_prunes_among_what_is_left(first, second):
    m, t = _pair(1)
    for _, step in (STEPS[first], STEPS[second]):
        step(MP, m)
        step(TP, t)
    _same(m, t)
    hook = [h[0] if isinstance(h, tuple) else h for h in m._forward_pre_hooks.values()]
    assert isinstance(hook[0], MP.PruningContainer) and len(hook[0]) == 2


def test_importance_scores_custom_mask_and_global():
    m, t = _pair(2, conv=False)
    scores = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    MP.l1_unstructured(m, "weight", 0.4, importance_scores=mg.tensor(scores))
    TP.l1_unstructured(t, "weight", 0.4, importance_scores=torch.tensor(scores))
    _same(m, t)
    mask = (np.arange(5) % 2).astype(np.float32)
    MP.custom_from_mask(m, "bias", mg.tensor(mask))
    TP.custom_from_mask(t, "bias", torch.tensor(mask))
    _same(m, t)
    m2, t2 = _pair(3), _pair(3, conv=False)
    (mc, tc), (ml, tl) = m2, t2
    MP.global_unstructured([(mc, "weight"), (ml, "weight")], MP.L1Unstructured, amount=0.5)
    TP.global_unstructured([(tc, "weight"), (tl, "weight")], TP.L1Unstructured, amount=0.5)
    _same(mc, tc)
    _same(ml, tl)
    zeros = int((mc.weight_mask == 0).sum()) + int((ml.weight_mask == 0).sum())
    assert zeros == round(0.5 * (mc.weight.numel() + ml.weight.numel()))


def test_training_keeps_pruned_entries_zero_and_equals_pytorch():
    m, t = _pair(4, conv=False)
    MP.l1_unstructured(m, "weight", 0.5)
    TP.l1_unstructured(t, "weight", 0.5)
    om, ot = mg.optim.SGD(m.parameters(), lr=0.1), torch.optim.SGD(t.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((4, 7)).astype(np.float32)
    for _ in range(3):
        om.zero_grad(), ot.zero_grad()
        (m(mg.tensor(x)) ** 2).sum().backward()
        (t(torch.tensor(x)) ** 2).sum().backward()
        om.step(), ot.step()
    m(mg.tensor(x)), t(torch.tensor(x))  # the hook recomputes weight from weight_orig
    _same(m, t, atol=1e-6)
    assert bool((m.weight.detach()[m.weight_mask == 0] == 0).all())


def test_remove_makes_it_permanent():
    m, t = _pair(5)
    for P, mod in ((MP, m), (TP, t)):
        P.ln_structured(mod, "weight", amount=2, n=2, dim=0)
        P.remove(mod, "weight")
    _same(m, t)
    assert not MP.is_pruned(m) and isinstance(m.weight, mg.nn.Parameter)
    with pytest.raises(ValueError, match="has to be pruned"):
        MP.remove(m, "weight")


def test_random_methods_prune_the_right_amount(device):
    m = mg.nn.Conv2d(3, 8, 3).to(device)
    MP.random_unstructured(m, "weight", amount=0.25)
    assert int((m.weight_mask == 0).sum()) == round(0.25 * m.weight.numel())
    MP.random_structured(m, "weight", amount=3, dim=0)
    chans = (m.weight_mask.sum((1, 2, 3)) == 0).sum()
    assert int(chans) >= 3
    assert m(mg.ones(1, 3, 5, 5, device=device)).device == mg.device(device)


def test_bad_amounts_and_dims_are_named():
    m, _ = _pair(6)
    with pytest.raises(ValueError, match="float in the range"):
        MP.l1_unstructured(m, "weight", amount=1.5)
    with pytest.raises(ValueError, match="should be smaller"):
        MP.l1_unstructured(m, "weight", amount=10_000)
    assert isinstance(m.weight, mg.nn.Parameter)  # a failed pruning leaves it as it was
    with pytest.raises(ValueError, match="multidimensional"):
        MP.ln_structured(m, "bias", amount=1, n=2, dim=0)
    with pytest.raises(TypeError, match="Invalid type"):
        MP.l1_unstructured(m, "weight", amount="half")

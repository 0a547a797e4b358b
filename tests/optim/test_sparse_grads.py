"""Optimizers with sparse gradients (nn.Embedding(sparse=True)) against PyTorch on every
device: SparseAdam, SGD and Adagrad train an embedding model to PyTorch's weights, the
other optimizers refuse as PyTorch does, and zero_grad, clipping, state dicts and a
checkpoint resume behave as there."""

import copy

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")
V, D = 12, 4


class _Model:
    """An embedding table (sparse gradients) and a linear head (dense ones)."""

    def __init__(self, lib, device, pad=None, sparse=True):
        rng = np.random.default_rng(0)
        kw = {} if lib is torch else {"device": device}
        w = rng.standard_normal((V, D)).astype(np.float32)
        self.lib, self.kw = lib, kw
        self.emb = lib.nn.Embedding(V, D, padding_idx=pad, sparse=sparse,
                                    _weight=lib.tensor(w, **kw))  # fmt: skip
        self.head = lib.nn.Linear(D, 1).to(**kw)
        with lib.no_grad():
            self.head.weight.copy_(lib.tensor(rng.standard_normal((1, D)).astype(np.float32), **kw))
            self.head.bias.zero_()

    def loss(self, step):
        rng = np.random.default_rng(100 + step)
        ids = self.lib.tensor(rng.integers(0, V, size=(4, 3)), **self.kw)
        y = self.lib.tensor(rng.standard_normal((4, 3, 1)).astype(np.float32), **self.kw)
        return ((self.head(self.emb(ids)) - y) ** 2).mean()


def _train(lib, device, make_opts, steps=5, pad=3):
    m = _Model(lib, device, pad)
    opts = make_opts(lib, m)
    for s in range(steps):
        for o in opts:
            o.zero_grad()
        m.loss(s).backward()
        for o in opts:
            o.step()
    return m, opts


def _np(t):
    return t.detach().cpu().numpy()


CASES = {
    "sparse_adam": lambda lib, m: [lib.optim.SparseAdam(m.emb.parameters(), lr=0.05),
                                   lib.optim.Adam(m.head.parameters(), lr=0.01)],
    "sparse_adam_maximize": lambda lib, m: [
        lib.optim.SparseAdam(list(m.emb.parameters()), lr=0.02, betas=(0.8, 0.9), maximize=True)],
    "sgd": lambda lib, m: [lib.optim.SGD(list(m.emb.parameters()) + list(m.head.parameters()),
                                         lr=0.1)],
    "sgd_momentum": lambda lib, m: [lib.optim.SGD(m.emb.parameters(), lr=0.1, momentum=0.9,
                                                  dampening=0.1)],
    "sgd_nesterov_maximize": lambda lib, m: [lib.optim.SGD(
        m.emb.parameters(), lr=0.05, momentum=0.9, nesterov=True, maximize=True)],
    "adagrad": lambda lib, m: [lib.optim.Adagrad(m.emb.parameters(), lr=0.1, lr_decay=0.05,
                                                 initial_accumulator_value=0.1)],
    "adagrad_maximize": lambda lib, m: [lib.optim.Adagrad(m.emb.parameters(), lr=0.1,
                                                          maximize=True)],
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_matches_pytorch(device, case):
    mm, _ = _train(mg, device, CASES[case])
    tm, _ = _train(torch, None, CASES[case])
    for a, b in ((mm.emb.weight, tm.emb.weight), (mm.head.weight, tm.head.weight)):
        np.testing.assert_allclose(_np(a), _np(b), rtol=2e-5, atol=2e-6)
    start = np.random.default_rng(0).standard_normal((V, D)).astype(np.float32)
    assert not np.allclose(_np(mm.emb.weight), start)  # the table did move
    np.testing.assert_array_equal(_np(mm.emb.weight)[3], start[3])  # the padding row did not


def test_sparse_adam_moves_only_the_rows_looked_up(device):
    w = mg.nn.Parameter(mg.ones(6, 2, device=device))
    opt = mg.optim.SparseAdam([w], lr=0.1)
    mg.nn.functional.embedding(mg.tensor([1, 4, 1], device=device), w, sparse=True).sum().backward()
    opt.step()
    moved = (_np(w) != 1).any(axis=1)
    np.testing.assert_array_equal(moved, [False, True, False, False, True, False])
    st = opt.state[w]
    assert st["step"] == 1 and not st["exp_avg"].is_sparse
    assert not _np(st["exp_avg"])[[0, 2, 3, 5]].any()


def test_sparse_adam_state_dict_and_resume(device):
    def make(lib, m):
        return [lib.optim.SparseAdam(m.emb.parameters(), lr=0.05)]

    full, _ = _train(mg, device, make, steps=4)
    m = _Model(mg, device, pad=3)
    (opt,) = make(mg, m)
    for s in range(2):
        opt.zero_grad()
        m.loss(s).backward()
        opt.step()
    saved = opt.state_dict()
    tm, (topt,) = _train(torch, None, make, steps=2)
    tsaved = topt.state_dict()
    assert saved["param_groups"] == tsaved["param_groups"]
    assert set(saved["state"][0]) == set(tsaved["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert int(saved["state"][0]["step"]) == int(tsaved["state"][0]["step"]) == 2
    for k in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_allclose(_np(saved["state"][0][k]), _np(tsaved["state"][0][k]),
                                   rtol=1e-5, atol=1e-7)  # fmt: skip
    (fresh,) = make(mg, m)
    fresh.load_state_dict(saved)
    for s in range(2, 4):
        fresh.zero_grad()
        m.loss(s).backward()
        fresh.step()
    np.testing.assert_allclose(_np(m.emb.weight), _np(full.emb.weight), rtol=1e-6, atol=1e-7)


def test_zero_grad_keeps_a_sparse_grad_without_entries(device):
    m = _Model(mg, device)
    t = _Model(torch, None)
    mopt = mg.optim.SparseAdam(m.emb.parameters())
    topt = torch.optim.SparseAdam(t.emb.parameters())
    m.loss(0).backward()
    t.loss(0).backward()
    mopt.zero_grad(set_to_none=False)
    topt.zero_grad(set_to_none=False)
    assert m.emb.weight.grad.is_sparse and m.emb.weight.grad._nnz() == t.emb.weight.grad._nnz() == 0
    m.loss(1).backward()
    t.loss(1).backward()
    np.testing.assert_array_equal(_np(m.emb.weight.grad._indices()),
                                  t.emb.weight.grad._indices().numpy())  # fmt: skip
    m.emb.zero_grad(set_to_none=False)
    assert m.emb.weight.grad._nnz() == 0
    m.emb.zero_grad()
    assert m.emb.weight.grad is None


@pytest.mark.parametrize("name,message", [
    ("Adam", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("AdamW", "Adam does not support sparse gradients, please consider SparseAdam instead"),
    ("Adamax", "Adamax does not support sparse gradients"),
    ("RMSprop", "RMSprop does not support sparse gradients"),
    ("Rprop", "Rprop does not support sparse gradients"),
    ("NAdam", "NAdam does not support sparse gradients"),
    ("RAdam", "RAdam does not support sparse gradients"),
    ("ASGD", "ASGD does not support sparse gradients"),
    ("Adadelta", "Adadelta does not support sparse gradients"),
    ("Adafactor", "Adafactor does not support sparse gradients"),
])  # fmt: skip
def test_dense_only_optimizers_refuse_sparse_grads(device, name, message):
    for lib, m in ((torch, _Model(torch, None)), (mg, _Model(mg, device))):
        opt = getattr(lib.optim, name)(m.emb.parameters())
        m.loss(0).backward()
        with pytest.raises(RuntimeError, match=message):
            opt.step()


@pytest.mark.parametrize("make,message", [
    (lambda lib, p: lib.optim.SGD(p, lr=0.1, weight_decay=0.1), r"add\(sparse, dense\)"),
    (lambda lib, p: lib.optim.Adagrad(p, weight_decay=0.1),
     "weight_decay option is not compatible with sparse gradients"),
])  # fmt: skip
def test_weight_decay_refuses_sparse_grads(device, make, message):
    for lib, m in ((torch, _Model(torch, None)), (mg, _Model(mg, device))):
        opt = make(lib, m.emb.parameters())
        m.loss(0).backward()
        with pytest.raises(RuntimeError, match=message):
            opt.step()


def test_sparse_adam_refuses_dense_grads_and_bad_options(device):
    for lib, m in ((torch, _Model(torch, None, sparse=False)),
                   (mg, _Model(mg, device, sparse=False))):  # fmt: skip
        opt = lib.optim.SparseAdam(m.emb.parameters())
        m.loss(0).backward()
        with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
            opt.step()
        p = [m.emb.weight]
        for kw, msg in ((dict(lr=0.0), "Invalid learning rate: 0.0"),
                        (dict(eps=-1.0), "Invalid epsilon value: -1.0"),
                        (dict(betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0")):  # fmt: skip
            with pytest.raises(ValueError, match=msg):
                lib.optim.SparseAdam(p, **kw)
        c = lib.nn.Parameter(lib.zeros(2, dtype=lib.complex64))
        with pytest.raises(ValueError, match=r"Complex params at indices \[\[0, 1\]\]"):
            lib.optim.SparseAdam([m.emb.weight, c])


def test_clipping_refuses_sparse_grads_as_pytorch(device):
    for lib, m in ((torch, _Model(torch, None)), (mg, _Model(mg, device))):
        m.loss(0).backward()
        with pytest.raises(NotImplementedError):
            lib.nn.utils.clip_grad_norm_(m.emb.parameters(), 1.0)
        with pytest.raises(NotImplementedError):
            lib.nn.utils.clip_grad_value_(m.emb.parameters(), 0.1)
        lib.nn.utils.clip_grad_norm_(m.head.parameters(), 1.0)  # the dense ones still clip


def test_lbfgs_reads_sparse_grads_dense(device):
    res = []
    for lib, m in ((torch, _Model(torch, None)), (mg, _Model(mg, device))):
        opt = lib.optim.LBFGS(m.emb.parameters(), lr=0.5, max_iter=3)

        def closure(m=m, opt=opt):
            opt.zero_grad()
            loss = m.loss(0)
            loss.backward()
            return loss

        opt.step(closure)
        res.append(_np(m.emb.weight))
    np.testing.assert_allclose(res[1], res[0], rtol=1e-4, atol=1e-5)


def test_grad_scaler_and_module_to_handle_sparse_grads():
    m = _Model(mg, "cpu")
    scaler = mg.amp.GradScaler("cpu", init_scale=4.0)
    opt = mg.optim.SparseAdam(m.emb.parameters())
    scaler.scale(m.loss(0)).backward()
    scaled = _np(m.emb.weight.grad._values()).copy()
    scaler.unscale_(opt)
    np.testing.assert_allclose(_np(m.emb.weight.grad._values()), scaled / 4.0, rtol=1e-6)
    m.emb.to(mg.float64)
    assert m.emb.weight.grad.dtype == mg.float64 and m.emb.weight.grad.is_sparse
    twin = copy.deepcopy(m.emb.weight)
    assert twin.grad.is_sparse and twin.grad is not m.emb.weight.grad
    np.testing.assert_array_equal(_np(twin.grad.to_dense()), _np(m.emb.weight.grad.to_dense()))

"""ctc_loss against PyTorch. Gradients are compared through log_softmax (how CTC is used):
PyTorch's own CTC backward is the gradient of the logits behind a log_softmax, not of
log_probs, so through log_softmax the two agree exactly."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")

TG = np.array([[1, 2, 2, 3], [4, 1, 0, 0], [2, 3, 1, 4]])
CONCAT = np.array([1, 2, 2, 3, 4, 1, 2, 3, 1])
IL, TL = np.array([12, 9, 10]), np.array([4, 2, 3])


def _ctc(lib):
    def f(x, targets, il, tl, **kw):
        lp = lib.nn.functional.log_softmax(x, -1)
        return lib.nn.functional.ctc_loss(lp, targets, il, tl, **kw)

    return f


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([(12, 3, 5), TG, IL, TL], {}),
        ([(12, 3, 5), TG, IL, TL], dict(reduction="sum")),
        ([(12, 3, 5), TG, IL, TL], dict(reduction="none")),
        ([(12, 3, 5), CONCAT, IL, TL], {}),
        ([(12, 3, 5), TG % 4, IL, np.array([4, 0, 3])], dict(blank=4, reduction="none")),
        ([(6, 5), np.array([1, 3, 3]), [6], [3]], {}),
        ([(6, 5), np.array([1, 3, 3]), [6], [3]], dict(reduction="none")),
        # target 0 needs more steps (4 labels, a repeat) than its input has: infinite loss
        ([(12, 3, 5), TG, np.array([4, 9, 10]), TL], dict(zero_infinity=True)),
        ([(12, 3, 5), TG, np.array([4, 9, 10]), TL], dict(zero_infinity=True,
                                                          reduction="none")),
    ],
)  # fmt: skip
def test_ctc_loss(specs, kw):
    check_op(_ctc(mg), specs, torch_fn=_ctc(torch), domain=(-3, 3), **kw)


def test_impossible_alignment_is_infinite():
    x = np.random.default_rng(0).standard_normal((3, 1, 4))
    lp = mg.nn.functional.log_softmax(mg.tensor(x), 2)
    loss = mg.nn.functional.ctc_loss(lp, mg.tensor([[1, 1, 2]]), [3], [3], reduction="none")
    t = torch.nn.functional.ctc_loss(torch.log_softmax(torch.tensor(x), 2),
                                     torch.tensor([[1, 1, 2]]), [3], [3], reduction="none")  # fmt: skip
    assert np.isinf(loss.numpy()).all() and np.isinf(t.numpy()).all()


def test_module():
    x = np.random.default_rng(1).standard_normal((12, 3, 5))
    tl = torch.nn.CTCLoss(blank=0)(torch.log_softmax(torch.tensor(x), 2), torch.tensor(TG),
                                   torch.tensor(IL), torch.tensor(TL))  # fmt: skip
    ml = mg.nn.CTCLoss(blank=0)(mg.nn.functional.log_softmax(mg.tensor(x), 2), mg.tensor(TG),
                                mg.tensor(IL), mg.tensor(TL))  # fmt: skip
    np.testing.assert_allclose(ml.numpy(), tl.numpy(), rtol=1e-10)


def test_bad_lengths():
    lp = mg.randn(5, 2, 4)
    with pytest.raises(mg.errors.ShapeError, match="input_lengths"):
        mg.nn.functional.ctc_loss(lp, mg.tensor([[1], [2]]), [6, 5], [1, 1])
    with pytest.raises(mg.errors.ShapeError, match="one entry per batch"):
        mg.nn.functional.ctc_loss(lp, mg.tensor([[1], [2]]), [5], [1, 1])

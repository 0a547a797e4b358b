"""Second derivatives of ``nn.functional``'s differentiable ops against PyTorch's (float64).

Each row runs ``fn(f, *inputs)`` (``f``: ``torch.nn.functional`` or manygrad's) with both
libraries, takes the first gradients ``g = d(out . v)/d(inputs)`` with ``create_graph=True``,
then the gradient of ``sum(g * w)`` with respect to the inputs and to ``v`` (the upstream
gradient, so that the part of the second derivative that is linear in ``v`` is checked as
well). Where PyTorch does not differentiate an op twice (ctc_loss, embedding_bag,
multi_margin_loss, ...), or is wrong (``fd_only``: embedding's ``scale_grad_by_freq``, whose
double backward in PyTorch drops the frequency scaling), manygrad's second derivative is
checked against central differences of its first gradient. Where PyTorch refuses a
gradient for an input (a class weight), manygrad must raise a RuntimeError too.

Inputs of a row: a shape tuple is a float input in [-2, 2] that requires grad; ``P(shape,
lo, hi)`` one in [lo, hi] (``ties=True``: whole numbers, equal maxima in pooling windows);
``C(array)`` a constant (targets, indices, random samples).
"""

from __future__ import annotations

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip("torch")


class P:
    """A float64 input with values in [lo, hi] (``grad``: it requires grad; ``ties``: whole
    numbers, so that windows hold equal maxima)."""

    def __init__(self, shape, lo=-2.0, hi=2.0, grad=True, ties=False):
        self.shape, self.lo, self.hi, self.grad, self.ties = shape, lo, hi, grad, ties


class C:
    """A constant input (no gradient): integer targets, indices, fixed samples."""

    def __init__(self, array):
        self.array = np.asarray(array)


CASES = []


def case(name, fn, *specs, fd_only=False):
    CASES.append(pytest.param(fn, specs, fd_only, id=name))


T = np.array  # targets and indices
_R2 = C(np.random.default_rng(3).uniform(0.05, 0.95, (2, 2, 2)))  # fractional samples (N, C, 2)
_R3 = C(np.random.default_rng(4).uniform(0.05, 0.95, (2, 2, 3)))

# ------------------------------------------------------------------ pooling
case("max_pool1d", lambda f, x: f.max_pool1d(x, 2), (2, 3, 8))
case("max_pool1d_s1_pad_dil", lambda f, x: f.max_pool1d(x, 3, 1, 1, 2), (2, 2, 9))
case("max_pool1d_ceil", lambda f, x: f.max_pool1d(x, 2, 2, ceil_mode=True), (2, 2, 7))
case("max_pool1d_indices", lambda f, x: f.max_pool1d(x, 2, return_indices=True), (2, 2, 8))
case("max_pool1d_indices_dil_ceil",
     lambda f, x: f.max_pool1d(x, 2, 2, 1, 2, True, True), (2, 2, 8))  # fmt: skip
case("max_pool2d", lambda f, x: f.max_pool2d(x, 2), (2, 2, 4, 6))
case("max_pool2d_overlap", lambda f, x: f.max_pool2d(x, 3, 1, 1), (1, 2, 5, 5))
case("max_pool2d_dil_ceil", lambda f, x: f.max_pool2d(x, 2, 2, 1, 2, True), (1, 2, 7, 6))
case("max_pool2d_indices", lambda f, x: f.max_pool2d(x, 2, return_indices=True), (2, 2, 4, 4))
case(
    "max_pool2d_indices_dil_ceil",
    lambda f, x: f.max_pool2d(x, (2, 3), (2, 1), 1, (1, 2), True, True),
    (1, 2, 5, 6),
)
case("max_pool2d_unbatched", lambda f, x: f.max_pool2d(x, 2), (2, 4, 4))
case("max_pool3d", lambda f, x: f.max_pool3d(x, 2), (1, 2, 4, 4, 4))
case("max_pool3d_overlap", lambda f, x: f.max_pool3d(x, 3, 1, 1), (1, 1, 4, 4, 4))
case("max_pool3d_dil_ceil", lambda f, x: f.max_pool3d(x, 2, 2, 1, 2, True), (1, 1, 5, 6, 5))
case("max_pool3d_indices", lambda f, x: f.max_pool3d(x, 2, return_indices=True), (1, 2, 4, 4, 4))
case("max_pool3d_indices_dil_ceil",
     lambda f, x: f.max_pool3d(x, 2, (1, 2, 2), (0, 1, 1), (2, 1, 2), True, True),
     (1, 2, 4, 5, 5))  # fmt: skip
case(
    "max_pool3d_indices_unbatched",
    lambda f, x: f.max_pool3d(x, 2, 1, return_indices=True),
    (1, 3, 3, 3),
)
case("max_pool3d_unbatched", lambda f, x: f.max_pool3d(x, 2), (2, 4, 4, 4))
_TIE = {"lo": 0, "hi": 2, "ties": True}
case("max_pool2d_ties", lambda f, x: f.max_pool2d(x, 3, 1, 1), P((1, 2, 4, 4), **_TIE))
case("max_pool2d_ties_idx", lambda f, x: f.max_pool2d(x, 2, 1, 0, 2, True, True),
     P((1, 2, 5, 4), **_TIE))  # fmt: skip
case("max_pool1d_ties", lambda f, x: f.max_pool1d(x, 3, 2, 1, 1, True), P((2, 2, 7), **_TIE))
case("max_pool3d_ties", lambda f, x: f.max_pool3d(x, 2, 1), P((1, 2, 3, 3, 3), **_TIE))
case("max_pool3d_ties_idx", lambda f, x: f.max_pool3d(x, 3, 2, 1, 1, True, True),
     P((1, 1, 4, 4, 4), **_TIE))  # fmt: skip
case("avg_pool1d", lambda f, x: f.avg_pool1d(x, 3, 2, 1, True, False), (2, 2, 8))
case("avg_pool2d", lambda f, x: f.avg_pool2d(x, 3, 2, 1), (1, 2, 5, 5))
case("avg_pool2d_divisor", lambda f, x: f.avg_pool2d(x, 2, divisor_override=3), (1, 2, 4, 4))
case("avg_pool3d", lambda f, x: f.avg_pool3d(x, 2, 1, 1, True, False), (1, 2, 4, 4, 4))
case("adaptive_avg_pool1d", lambda f, x: f.adaptive_avg_pool1d(x, 3), (2, 2, 7))
case("adaptive_avg_pool2d", lambda f, x: f.adaptive_avg_pool2d(x, (3, 2)), (1, 2, 5, 5))
case("adaptive_avg_pool3d", lambda f, x: f.adaptive_avg_pool3d(x, 2), (1, 2, 5, 4, 3))
case("adaptive_max_pool1d", lambda f, x: f.adaptive_max_pool1d(x, 3), (2, 2, 7))
case("adaptive_max_pool1d_idx", lambda f, x: f.adaptive_max_pool1d(x, 3, True), (2, 2, 7))
case("adaptive_max_pool2d", lambda f, x: f.adaptive_max_pool2d(x, (3, 2)), (1, 2, 5, 5))
case("adaptive_max_pool2d_idx", lambda f, x: f.adaptive_max_pool2d(x, 2, True), (1, 2, 5, 5))
case("adaptive_max_pool3d", lambda f, x: f.adaptive_max_pool3d(x, 2), (1, 2, 5, 4, 3))
case("adaptive_max_pool3d_idx", lambda f, x: f.adaptive_max_pool3d(x, 2, True), (1, 1, 4, 4, 3))
case("adaptive_max_pool2d_ties", lambda f, x: f.adaptive_max_pool2d(x, (2, 3), True),
     P((1, 2, 5, 5), **_TIE))  # fmt: skip
case("adaptive_max_pool3d_ties", lambda f, x: f.adaptive_max_pool3d(x, (2, 3, 2)),
     P((1, 2, 3, 4, 5), **_TIE))  # fmt: skip
case("adaptive_max_pool2d_unbatched", lambda f, x: f.adaptive_max_pool2d(x, 3), (2, 5, 4))
case("fractional_max_pool2d",
     lambda f, x, r: f.fractional_max_pool2d(x, 2, output_size=3, _random_samples=r),
     (2, 2, 6, 6), _R2)  # fmt: skip
case("fractional_max_pool2d_ratio_idx",
     lambda f, x, r: f.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5), return_indices=True,
                                             _random_samples=r),
     (2, 2, 6, 8), _R2)  # fmt: skip
case("fractional_max_pool3d",
     lambda f, x, r: f.fractional_max_pool3d(x, 2, output_size=2, _random_samples=r),
     (2, 2, 5, 5, 5), _R3)  # fmt: skip
case("fractional_max_pool3d_idx",
     lambda f, x, r: f.fractional_max_pool3d(x, (2, 1, 2), output_size=(2, 3, 2),
                                             return_indices=True, _random_samples=r),
     (2, 2, 4, 4, 4), _R3)  # fmt: skip
case("fractional_max_pool2d_ties",
     lambda f, x, r: f.fractional_max_pool2d(x, 3, output_size=3, _random_samples=r),
     P((2, 2, 6, 6), **_TIE), _R2)  # fmt: skip
case("fractional_max_pool3d_ties",
     lambda f, x, r: f.fractional_max_pool3d(x, 2, output_size=3, return_indices=True,
                                             _random_samples=r),
     P((2, 2, 5, 5, 5), **_TIE), _R3)  # fmt: skip
case("lp_pool1d_p2", lambda f, x: f.lp_pool1d(x, 2, 3, 2), P((2, 2, 7), 0.2, 2))
case("lp_pool1d_p3_ceil", lambda f, x: f.lp_pool1d(x, 3, 2, ceil_mode=True), P((2, 2, 7), 0.2, 2))
case("lp_pool1d_p2_signed", lambda f, x: f.lp_pool1d(x, 2, 2), (2, 2, 6))
case("lp_pool2d_p2", lambda f, x: f.lp_pool2d(x, 2, 2), P((1, 2, 4, 4), 0.2, 2))
case("lp_pool2d_p1.5", lambda f, x: f.lp_pool2d(x, 1.5, (2, 3), 1), P((1, 2, 4, 5), 0.2, 2))
case("lp_pool3d_p2", lambda f, x: f.lp_pool3d(x, 2, 2), P((1, 2, 4, 4, 4), 0.2, 2))
case("lp_pool3d_p3", lambda f, x: f.lp_pool3d(x, 3, 2, 1), P((1, 1, 3, 3, 3), 0.2, 2))
case("lp_pool3d_ceil", lambda f, x: f.lp_pool3d(x, 2, 2, 2, True), P((1, 1, 3, 4, 3), 0.2, 2))
case(
    "max_unpool1d",
    lambda f, x, i: f.max_unpool1d(x, i, 2),
    (2, 2, 4),
    C(T([[[0, 3, 4, 7]] * 2] * 2)),
)
case("max_unpool2d",
     lambda f, x, i: f.max_unpool2d(x, i, 2, output_size=(5, 4)),
     (1, 2, 2, 2), C(T([[[[0, 3], [9, 14]], [[5, 2], [8, 15]]]])))  # fmt: skip
case("max_unpool3d",
     lambda f, x, i: f.max_unpool3d(x, i, 2),
     (1, 1, 1, 2, 2), C(T([[[[[0, 3], [13, 30]]]]])))  # fmt: skip
case(
    "max_pool_unpool_chain",
    lambda f, x: f.max_unpool2d(*f.max_pool2d(x, 2, return_indices=True), 2),
    (1, 2, 4, 4),
)

# ------------------------------------------------------------------ losses
_T4 = C(T([1, 0, 3, 2, 1]))  # class targets of a (5, 4) input
_T4I = C(T([1, -100, 3, 2, 1]))
_W4 = P((4,), 0.5, 2, grad=False)
_K = C(T([[[1, 2], [0, 2]], [[2, 1], [1, 0]]]))  # (2, 2, 2) targets of a (2, 3, 2, 2) input
for red in ("none", "sum", "mean"):
    case(f"nll_loss_{red}", lambda f, x, t, r=red: f.nll_loss(x, t, reduction=r), (5, 4), _T4)
    case(f"nll_loss_weight_ignore_{red}",
         lambda f, x, t, w, r=red: f.nll_loss(x, t, w, ignore_index=3, reduction=r),
         (5, 4), _T4, _W4)  # fmt: skip
    case(f"cross_entropy_{red}", lambda f, x, t, r=red: f.cross_entropy(x, t, reduction=r),
         (5, 4), _T4)  # fmt: skip
    case(f"cross_entropy_weight_ignore_{red}",
         lambda f, x, t, w, r=red: f.cross_entropy(x, t, w, ignore_index=-100, reduction=r),
         (5, 4), _T4I, _W4)  # fmt: skip
    case(f"cross_entropy_smooth_{red}",
         lambda f, x, t, w, r=red: f.cross_entropy(x, t, w, reduction=r, label_smoothing=0.2),
         (5, 4), _T4I, _W4)  # fmt: skip
    case(f"cross_entropy_probs_{red}",
         lambda f, x, t, r=red: f.cross_entropy(x, t, reduction=r, label_smoothing=0.1),
         (5, 4), P((5, 4), 0, 1))  # fmt: skip
    case(f"cross_entropy_probs_weight_{red}",
         lambda f, x, t, w, r=red: f.cross_entropy(x, t, w, reduction=r),
         (5, 4), P((5, 4), 0, 1), _W4)  # fmt: skip
case(
    "nll_loss_weight_grad",
    lambda f, x, t, w: f.nll_loss(x, t, w, ignore_index=2),
    (5, 4),
    _T4,
    P((4,), 0.5, 2),
)
case("nll_loss_2d", lambda f, x, t: f.nll_loss(x, t, ignore_index=0), (2, 3, 2, 2), _K)
case("nll_loss_2d_weight_mean", lambda f, x, t, w: f.nll_loss(x, t, w, ignore_index=1),
     (2, 3, 2, 2), _K, P((3,), 0.5, 2, grad=False))  # fmt: skip
case("nll_loss_2d_none", lambda f, x, t: f.nll_loss(x, t, reduction="none"), (2, 3, 2, 2), _K)
case("nll_loss_unbatched", lambda f, x, t: f.nll_loss(x, t), (4,), C(T(2)))
case("cross_entropy_2d_weight",
     lambda f, x, t, w: f.cross_entropy(x, t, w, label_smoothing=0.3),
     (2, 3, 2, 2), _K, P((3,), 0.5, 2, grad=False))  # fmt: skip
case("cross_entropy_2d_weight_ignore_smooth",
     lambda f, x, t, w: f.cross_entropy(x, t, w, ignore_index=2, label_smoothing=0.2),
     (2, 3, 2, 2), _K, P((3,), 0.5, 2, grad=False))  # fmt: skip
case("cross_entropy_2d_probs", lambda f, x, t: f.cross_entropy(x, t),
     (2, 3, 2, 2), P((2, 3, 2, 2), 0, 1))  # fmt: skip
case("cross_entropy_2d_probs_weight_smooth",
     lambda f, x, t, w: f.cross_entropy(x, t, w, reduction="sum", label_smoothing=0.25),
     (2, 3, 2, 2), P((2, 3, 2, 2), 0, 1), P((3,), 0.5, 2, grad=False))  # fmt: skip
case("cross_entropy_weight_grad", lambda f, x, t, w: f.cross_entropy(x, t, w),
     (5, 4), _T4, P((4,), 0.5, 2))  # fmt: skip
case("linear_cross_entropy",
     lambda f, x, w, t: f.linear_cross_entropy(x, w, t, ignore_index=1, label_smoothing=0.1),
     (5, 3), (4, 3), _T4)  # fmt: skip
case("cross_entropy_unbatched", lambda f, x, t: f.cross_entropy(x, t), (4,), C(T(1)))
case("l1_loss", lambda f, x, y: f.l1_loss(x, y), (3, 4), (3, 4))
case("mse_loss", lambda f, x, y: f.mse_loss(x, y, reduction="sum"), (3, 4), (3, 4))
case("smooth_l1_loss", lambda f, x, y: f.smooth_l1_loss(x, y, beta=0.5), (3, 4), (3, 4))
case("huber_loss", lambda f, x, y: f.huber_loss(x, y, delta=0.7), (3, 4), (3, 4))
case(
    "soft_margin_loss",
    lambda f, x, y: f.soft_margin_loss(x, y),
    (3, 4),
    C(T([[1.0, -1, -1, 1]] * 3)),
)
_W4C = P((4,), 0.5, 2, grad=False)
case("bce", lambda f, x, y, w: f.binary_cross_entropy(x, y, w),
     P((3, 4), 0.1, 0.9), P((3, 4), 0, 1), _W4C)  # fmt: skip
case("bce_none", lambda f, x, y: f.binary_cross_entropy(x, y, reduction="none"),
     P((3, 4), 0.1, 0.9), P((3, 4), 0, 1))  # fmt: skip
case("bce_weight_grad", lambda f, x, y, w: f.binary_cross_entropy(x, y, w),
     P((3, 4), 0.1, 0.9), P((3, 4), 0, 1), P((4,), 0.5, 2))  # fmt: skip
case("bce_with_logits",
     lambda f, x, y, w, pw: f.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw),
     (3, 4), P((3, 4), 0, 1), _W4C, _W4C)  # fmt: skip
case("bce_with_logits_sum",
     lambda f, x, y: f.binary_cross_entropy_with_logits(x, y, reduction="sum"),
     (3, 4), P((3, 4), 0, 1))  # fmt: skip
case("bce_with_logits_weight_grad",
     lambda f, x, y, w: f.binary_cross_entropy_with_logits(x, y, pos_weight=w),
     (3, 4), P((3, 4), 0, 1), P((4,), 0.5, 2))  # fmt: skip
case("kl_div", lambda f, x, y: f.kl_div(x, y, reduction="batchmean"), (3, 4), P((3, 4), 0.1, 1))
case("kl_div_log_target", lambda f, x, y: f.kl_div(x, y, reduction="sum", log_target=True),
     (3, 4), (3, 4))  # fmt: skip
case("kl_div_none", lambda f, x, y: f.kl_div(x, y, reduction="none"), (3, 4), P((3, 4), 0.1, 1))
case("poisson_nll_log", lambda f, x, y: f.poisson_nll_loss(x, y), (3, 4), P((3, 4), 0, 3))
case("poisson_nll_full", lambda f, x, y: f.poisson_nll_loss(x, y, False, True),
     P((3, 4), 0.5, 2), P((3, 4), 1.5, 3))  # fmt: skip
case("gaussian_nll", lambda f, x, y, v: f.gaussian_nll_loss(x, y, v, full=True),
     (3, 4), (3, 4), P((3, 4), 0.5, 2))  # fmt: skip
case("gaussian_nll_var1", lambda f, x, y, v: f.gaussian_nll_loss(x, y, v),
     (3, 4), (3, 4), P((3, 1), 0.5, 2))  # fmt: skip
case("multi_margin", lambda f, x, t: f.multi_margin_loss(x, t, margin=0.7), (5, 4), _T4)
case("multi_margin_p2_w", lambda f, x, t, w: f.multi_margin_loss(x, t, 2, 0.9, w),
     (5, 4), _T4, P((4,), 0.5, 2))  # fmt: skip
case("multi_margin_p2_cw", lambda f, x, t, w: f.multi_margin_loss(x, t, 2, 0.9, w, reduction="none"),
     (5, 4), _T4, _W4)  # fmt: skip
case("multilabel_margin", lambda f, x, t: f.multilabel_margin_loss(x, t),
     (2, 4), C(T([[3, 0, -1, 1], [1, 2, 3, -1]])))  # fmt: skip
case("multilabel_soft_margin", lambda f, x, t, w: f.multilabel_soft_margin_loss(x, t, w),
     (3, 4), C(T([[1.0, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])), P((4,), 0.5, 2))  # fmt: skip
case("hinge_embedding", lambda f, x, t: f.hinge_embedding_loss(x, t, 1.5),
     (3, 4), C(T([[1.0, -1, -1, 1]] * 3)))  # fmt: skip
case("margin_ranking", lambda f, a, b, t: f.margin_ranking_loss(a, b, t, 0.2),
     (6,), (6,), C(T([1.0, -1, 1, -1, 1, 1])))  # fmt: skip
case("cosine_embedding", lambda f, a, b, t: f.cosine_embedding_loss(a, b, t, 0.1),
     (3, 5), (3, 5), C(T([1.0, -1, -1])))  # fmt: skip
case("triplet_margin", lambda f, a, p, n: f.triplet_margin_loss(a, p, n, swap=True),
     (3, 5), (3, 5), (3, 5))  # fmt: skip
case("triplet_distance",
     lambda f, a, p, n: f.triplet_margin_with_distance_loss(a, p, n, margin=2.0),
     (3, 5), (3, 5), (3, 5))  # fmt: skip
case("ctc_loss", lambda f, x, t: f.ctc_loss(x, t, [6, 5], [3, 2]),
     (6, 2, 4), C(T([[1, 2, 2], [3, 1, 0]])))  # fmt: skip
case("ctc_loss_sum", lambda f, x, t: f.ctc_loss(x.log_softmax(-1), t, [6, 5], [3, 2],
                                                reduction="sum"),
     (6, 2, 4), C(T([[1, 2, 2], [3, 1, 0]])))  # fmt: skip
case("ctc_loss_none_blank",
     lambda f, x, t: f.ctc_loss(x.log_softmax(-1), t, [5, 4], [2, 1], blank=3,
                                reduction="none", zero_infinity=True),
     (5, 2, 4), C(T([[1, 2], [0, 0]])))  # fmt: skip

# ------------------------------------------------------------------ normalization
_RM, _RV = P((3,), -1, 1, grad=False), P((3,), 0.5, 2, grad=False)
case("batch_norm_train", lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
     (4, 3, 2), (3,), (3,))  # fmt: skip
case("batch_norm_train_stats",
     lambda f, x, w, b, m, v: f.batch_norm(x, m.clone(), v.clone(), w, b, True, 0.1),
     (4, 3), (3,), (3,), _RM, _RV)  # fmt: skip
case("batch_norm_train_noaffine", lambda f, x: f.batch_norm(x, None, None, training=True),
     (3, 3, 2, 2))  # fmt: skip
case("batch_norm_eval", lambda f, x, w, b, m, v: f.batch_norm(x, m, v, w, b, False),
     (4, 3, 2), (3,), (3,), _RM, _RV)  # fmt: skip
case("layer_norm", lambda f, x, w, b: f.layer_norm(x, (3, 4), w, b), (2, 3, 4), (3, 4), (3, 4))
case("layer_norm_noaffine", lambda f, x: f.layer_norm(x, (4,)), (3, 4))
case("layer_norm_bias_only", lambda f, x, b: f.layer_norm(x, (4,), None, b), (3, 4), (4,))
case("layer_norm_params_only", lambda f, x, w, b: f.layer_norm(x, (4,), w, b),
     P((3, 4), grad=False), (4,), (4,))  # fmt: skip
case("batch_norm_input_only", lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
     (4, 3), P((3,), grad=False), P((3,), grad=False))  # fmt: skip
case("group_norm_weight_only", lambda f, x, w: f.group_norm(x, 2, w), (2, 4, 3), (4,))
case("group_norm", lambda f, x, w, b: f.group_norm(x, 2, w, b), (2, 4, 3), (4,), (4,))
case("group_norm_noaffine", lambda f, x: f.group_norm(x, 1), (2, 2, 2, 2))
case("instance_norm", lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b),
     (2, 3, 4), (3,), (3,))  # fmt: skip
case("instance_norm_stats",
     lambda f, x, m, v: f.instance_norm(x, m.clone(), v.clone(), use_input_stats=True),
     (2, 3, 2, 2), _RM, _RV)  # fmt: skip
case("instance_norm_eval",
     lambda f, x, m, v, w: f.instance_norm(x, m, v, w, use_input_stats=False),
     (2, 3, 4), _RM, _RV, (3,))  # fmt: skip
case("rms_norm", lambda f, x, w: f.rms_norm(x, (4,), w), (3, 4), (4,))
case("rms_norm_eps", lambda f, x: f.rms_norm(x, (2, 3), eps=1e-3), (2, 2, 3))
case("local_response_norm_3d", lambda f, x: f.local_response_norm(x, 3, 0.1, 0.75, 1.0),
     (2, 5, 3))  # fmt: skip
case("local_response_norm_4d", lambda f, x: f.local_response_norm(x, 2, 0.2), (1, 4, 2, 2))
case("local_response_norm_5d", lambda f, x: f.local_response_norm(x, 3, 0.3, 0.5, 2.0),
     (1, 4, 2, 2, 1))  # fmt: skip
case("normalize", lambda f, x: f.normalize(x, p=3, dim=1), (3, 4))

# ------------------------------------------------------------------ padding, resampling
for mode in ("constant", "reflect", "replicate", "circular"):
    case(f"pad1d_{mode}", lambda f, x, m=mode: f.pad(x, (2, 1), m), (2, 2, 4))
    case(f"pad2d_{mode}", lambda f, x, m=mode: f.pad(x, (1, 2, 2, 1), m), (1, 2, 3, 4))
    case(f"pad3d_{mode}", lambda f, x, m=mode: f.pad(x, (1, 0, 0, 1, 1, 1), m), (1, 1, 2, 3, 3))
case("pad_negative", lambda f, x: f.pad(x, (-1, 2), value=0.5), (2, 5))
for mode, shape, ac in (
    ("nearest", (1, 2, 3, 4), None), ("nearest-exact", (1, 2, 3, 4), None),
    ("linear", (2, 2, 5), False), ("linear", (2, 2, 5), True),
    ("bilinear", (1, 2, 3, 4), False), ("bilinear", (1, 2, 3, 4), True),
    ("bicubic", (1, 1, 3, 4), False), ("bicubic", (1, 1, 3, 4), True),
    ("trilinear", (1, 1, 2, 3, 3), False), ("nearest", (1, 1, 2, 3, 3), None),
    ("area", (1, 2, 5, 5), None),
):  # fmt: skip
    nsp = len(shape) - 2
    case(f"interpolate_{mode}_{nsp}d_ac{ac}",
         lambda f, x, m=mode, a=ac, n=nsp: f.interpolate(
             x, size=(3, 7, 4)[-n:] if m == "area" else None,
             scale_factor=None if m == "area" else 1.7, mode=m, align_corners=a),
         shape)  # fmt: skip
case("interpolate_bicubic_antialias",
     lambda f, x: f.interpolate(x, scale_factor=0.6, mode="bicubic", antialias=True),
     (1, 1, 5, 6))  # fmt: skip
case("interpolate_recompute",
     lambda f, x: f.interpolate(x, scale_factor=1.3, mode="bilinear", recompute_scale_factor=True),
     (1, 1, 3, 4))  # fmt: skip
case(
    "interpolate_bilinear_antialias",
    lambda f, x: f.interpolate(x, size=(2, 3), mode="bilinear", antialias=True),
    (1, 1, 5, 6),
)
case(
    "interpolate_area_3d",
    lambda f, x: f.interpolate(x, size=(2, 3, 2), mode="area"),
    (1, 1, 3, 4, 5),
)
case(
    "interpolate_nearest_exact_3d",
    lambda f, x: f.interpolate(x, scale_factor=1.5, mode="nearest-exact"),
    (1, 1, 2, 3, 2),
)
_GRID2 = P((1, 3, 2, 2), -1.1, 1.1)
for mode in ("bilinear", "nearest", "bicubic"):
    for pm in ("zeros", "border", "reflection"):
        for ac in (False, True):
            case(f"grid_sample_{mode}_{pm}_ac{ac}",
                 lambda f, x, g, m=mode, p=pm, a=ac: f.grid_sample(x, g, m, p, a),
                 (1, 2, 3, 4), _GRID2)  # fmt: skip
case("grid_sample_3d", lambda f, x, g: f.grid_sample(x, g, align_corners=False),
     (1, 2, 2, 3, 3), P((1, 2, 2, 1, 3), -1.1, 1.1))  # fmt: skip
case("grid_sample_3d_nearest_border",
     lambda f, x, g: f.grid_sample(x, g, "nearest", "border", align_corners=True),
     (1, 2, 2, 3, 3), P((1, 2, 2, 1, 3), -1.1, 1.1))  # fmt: skip
case("grid_sample_3d_reflection",
     lambda f, x, g: f.grid_sample(x, g, "bilinear", "reflection", align_corners=True),
     (1, 2, 2, 3, 3), P((1, 2, 2, 1, 3), -1.3, 1.3))  # fmt: skip
case("affine_grid_2d", lambda f, t: f.affine_grid(t, (2, 1, 3, 4), False), (2, 2, 3))
case("affine_grid_3d", lambda f, t: f.affine_grid(t, (1, 1, 2, 3, 2), True), (1, 3, 4))
case("affine_grid_sample",
     lambda f, x, t: f.grid_sample(x, f.affine_grid(t, (1, 2, 3, 3), False), align_corners=False),
     (1, 2, 4, 4), P((1, 2, 3), -0.8, 0.8))  # fmt: skip

# ------------------------------------------------------------------ embedding, shapes
_IDX = C(T([[0, 2, 4], [3, 3, 1]]))
case("embedding", lambda f, i, w: f.embedding(i, w), _IDX, (5, 3))
case("embedding_padding_idx", lambda f, i, w: f.embedding(i, w, padding_idx=3), _IDX, (5, 3))
case(
    "embedding_by_freq",
    lambda f, i, w: f.embedding(i, w, scale_grad_by_freq=True),
    _IDX,
    (5, 3),
    fd_only=True,
)
for mode in ("sum", "mean", "max"):
    case(f"embedding_bag_{mode}",
         lambda f, i, w, o, m=mode: f.embedding_bag(i, w, o, mode=m),
         C(T([0, 2, 4, 3, 3, 1])), (5, 3), C(T([0, 2])))  # fmt: skip
case("embedding_bag_psw",
     lambda f, i, w, p: f.embedding_bag(i, w, mode="sum", per_sample_weights=p),
     _IDX, (5, 3), (2, 3))  # fmt: skip
case(
    "embedding_bag_max_pad",
    lambda f, i, w: f.embedding_bag(i, w, mode="max", padding_idx=3),
    _IDX,
    (5, 3),
)
case("embedding_bag_mean_last_offset",
     lambda f, i, w, o: f.embedding_bag(i, w, o, mode="mean", include_last_offset=True),
     C(T([0, 2, 4, 3, 3, 1])), (5, 3), C(T([0, 2, 6])))  # fmt: skip
case("pixel_shuffle", lambda f, x: f.pixel_shuffle(x, 2), (1, 8, 2, 3))
case("pixel_unshuffle", lambda f, x: f.pixel_unshuffle(x, 2), (1, 2, 4, 2))
case("channel_shuffle", lambda f, x: f.channel_shuffle(x, 2), (1, 4, 2, 2))
case("unfold", lambda f, x: f.unfold(x, (2, 3), 2, 1, 1), (1, 2, 4, 5))
case("fold", lambda f, x: f.fold(x, (4, 5), (2, 2), 1, 1, 2), (1, 8, 9))

# ------------------------------------------------------------------ convolution
case("conv1d", lambda f, x, w, b: f.conv1d(x, w, b, 2, 1, 2, 2), (2, 4, 9), (6, 2, 3), (6,))
case("conv2d", lambda f, x, w, b: f.conv2d(x, w, b, 1, 1), (2, 2, 4, 4), (3, 2, 3, 3), (3,))
case("conv2d_groups_dil",
     lambda f, x, w: f.conv2d(x, w, None, (2, 1), "valid", 2, 2),
     (1, 4, 6, 6), (4, 2, 2, 2))  # fmt: skip
case("conv2d_same", lambda f, x, w: f.conv2d(x, w, padding="same"), (1, 2, 4, 4), (2, 2, 3, 1))
case("conv2d_weight_only", lambda f, x, w: f.conv2d(x, w, None, 1, 1),
     P((1, 2, 3, 3), grad=False), (2, 2, 3, 3))  # fmt: skip
case("conv3d", lambda f, x, w, b: f.conv3d(x, w, b, 1, 1), (1, 2, 3, 3, 3), (2, 2, 2, 2, 2), (2,))
case("conv_transpose1d",
     lambda f, x, w, b: f.conv_transpose1d(x, w, b, 2, 1, 1, 2, 1),
     (2, 4, 4), (4, 3, 3), (6,))  # fmt: skip
case("conv_transpose2d",
     lambda f, x, w, b: f.conv_transpose2d(x, w, b, 2, 1, 1),
     (1, 2, 3, 3), (2, 3, 3, 3), (3,))  # fmt: skip
case(
    "conv_transpose2d_dil",
    lambda f, x, w: f.conv_transpose2d(x, w, None, 1, 0, 0, 1, 2),
    (1, 2, 3, 3),
    (2, 2, 2, 2),
)
case("conv_transpose3d",
     lambda f, x, w, b: f.conv_transpose3d(x, w, b, 2, 1, 1),
     (1, 2, 2, 2, 2), (2, 2, 2, 2, 2), (2,))  # fmt: skip
case("conv_tbc", lambda f, x, w, b: f.conv_tbc(x, w, b, 1), (5, 2, 3), (3, 3, 4), (4,))

# ------------------------------------------------------------------ activations and others
for name in ("relu", "relu6", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus",
             "hardtanh", "hardswish", "hardsigmoid", "leaky_relu", "logsigmoid", "softsign",
             "tanhshrink", "softshrink", "hardshrink", "sigmoid", "tanh"):  # fmt: skip
    case(name, lambda f, x, n=name: getattr(f, n)(x), (3, 4))
case("gelu_tanh", lambda f, x: f.gelu(x, approximate="tanh"), (3, 4))
case("elu_alpha", lambda f, x: f.elu(x, 0.7), (3, 4))
case("softplus_beta", lambda f, x: f.softplus(x, 2.0, 1.5), (3, 4))
case("threshold", lambda f, x: f.threshold(x, 0.3, -1.0), (3, 4))
case("rrelu_eval", lambda f, x: f.rrelu(x, training=False), (3, 4))
case("glu", lambda f, x: f.glu(x, 1), (3, 4))
case("prelu", lambda f, x, w: f.prelu(x, w), (2, 3, 4), P((3,), 0.1, 0.5))
case("softmax", lambda f, x: f.softmax(x, 1), (3, 4))
case("log_softmax", lambda f, x: f.log_softmax(x, 0), (3, 4))
case("softmin", lambda f, x: f.softmin(x, -1), (3, 4))
case("linear", lambda f, x, w, b: f.linear(x, w, b), (3, 4), (2, 4), (2,))
case("linear_nobias_3d", lambda f, x, w: f.linear(x, w), (2, 3, 4), (2, 4))
case("bilinear", lambda f, a, b, w, c: f.bilinear(a, b, w, c), (3, 2), (3, 4), (2, 2, 4), (2,))
case("cosine_similarity", lambda f, a, b: f.cosine_similarity(a, b), (3, 4), (3, 4))
case("pairwise_distance", lambda f, a, b: f.pairwise_distance(a, b, 3), (3, 4), (3, 4))
case("pdist", lambda f, x: f.pdist(x), (4, 3))
case("dropout_eval", lambda f, x: f.dropout(x, 0.5, training=False), (3, 4))
case("sdpa", lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v), (1, 3, 2), (1, 4, 2),
     (1, 4, 3))  # fmt: skip
case("sdpa_causal_scale",
     lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.4),
     (2, 3, 2), (2, 3, 2), (2, 3, 2))  # fmt: skip
case("sdpa_mask",
     lambda f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m),
     (1, 3, 2), (1, 4, 2), (1, 4, 3), (3, 4))  # fmt: skip
case("sdpa_gqa",
     lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, enable_gqa=True),
     (1, 4, 3, 2), (1, 2, 3, 2), (1, 2, 3, 2))  # fmt: skip
case(
    "sdpa_bool_mask",
    lambda f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m),
    (1, 3, 2),
    (1, 4, 2),
    (1, 4, 3),
    C(T([[True, False, True, True], [True, True, False, True], [False, True, True, True]])),
)


def _seeded(f, fn):
    """``fn()`` after seeding ``f``'s library: the same random draws on every call."""
    (torch if f is torch.nn.functional else mg).manual_seed(0)
    return fn()


# NOTE: random ops draw other numbers than PyTorch's: checked against finite differences
case("dropout_train", lambda f, x: _seeded(f, lambda: f.dropout(x, 0.4)), (3, 4), fd_only=True)
case("dropout2d_train", lambda f, x: _seeded(f, lambda: f.dropout2d(x, 0.5)), (2, 3, 2, 2),
     fd_only=True)  # fmt: skip
case("alpha_dropout_train", lambda f, x: _seeded(f, lambda: f.alpha_dropout(x, 0.3, True)),
     (3, 4), fd_only=True)  # fmt: skip
case("rrelu_train", lambda f, x: _seeded(f, lambda: f.rrelu(x, training=True)), (3, 4),
     fd_only=True)  # fmt: skip
case("gumbel_softmax", lambda f, x: _seeded(f, lambda: f.gumbel_softmax(x, 0.7)), (3, 4),
     fd_only=True)  # fmt: skip
case("sdpa_dropout",
     lambda f, q, k, v: _seeded(f, lambda: f.scaled_dot_product_attention(q, k, v,
                                                                          dropout_p=0.3)),
     (1, 3, 2), (1, 4, 2), (1, 4, 3), fd_only=True)  # fmt: skip
case("sdpa_dropout_gqa_causal",
     lambda f, q, k, v: _seeded(f, lambda: f.scaled_dot_product_attention(
         q, k, v, dropout_p=0.3, is_causal=True, enable_gqa=True)),
     (1, 2, 3, 2), (1, 1, 3, 2), (1, 1, 3, 3), fd_only=True)  # fmt: skip
case("multi_head_attention_forward",
     lambda f, q, k, v, wi, bi, wo, bo: f.multi_head_attention_forward(
         q, k, v, 4, 2, wi, bi, None, None, False, 0.0, wo, bo, training=False)[0],
     (3, 2, 4), (5, 2, 4), (5, 2, 4), (12, 4), (12,), (4, 4), (4,))  # fmt: skip
case("relu_inplace", lambda f, x: f.relu_(x * 1.5), (3, 4))
case("elu_inplace", lambda f, x: f.elu_(x * 1.5), (3, 4))
case("leaky_relu_inplace", lambda f, x: f.leaky_relu_(x * 1.5, 0.2), (3, 4))
case("hardtanh_inplace", lambda f, x: f.hardtanh_(x * 1.5), (3, 4))
case("alpha_dropout_eval", lambda f, x: f.alpha_dropout(x, 0.3, False), (3, 4))
case("dropout2d_eval", lambda f, x: f.dropout2d(x, 0.3, False), (1, 3, 2, 2))
case("upsample_bilinear", lambda f, x: f.upsample_bilinear(x, scale_factor=2), (1, 1, 2, 3))
case("upsample_nearest", lambda f, x: f.upsample_nearest(x, size=(3, 5)), (1, 1, 2, 3))


# ------------------------------------------------------------------ the check


def _inputs(specs, rng):
    """(kind, array) per spec: ``grad`` float inputs, ``const`` arrays."""
    out = []
    for s in specs:
        if isinstance(s, tuple):
            s = P(s)
        if isinstance(s, P):
            a = rng.uniform(s.lo, s.hi, s.shape)
            out.append(("grad" if s.grad else "const", a.round() if s.ties else a))
        else:
            out.append(("const", s.array))
    return out


def _tensors(lib, arrays, device=None):
    ts = []
    for kind, a in arrays:
        if lib is torch:
            t = torch.tensor(a)
        else:
            t = mg.tensor(a, device=device)
        ts.append(t.requires_grad_(True) if kind == "grad" else t)
    return ts


def _outputs(out):
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if o.is_floating_point() and o.requires_grad]


def _second(lib, fn, ins, vs, ws):
    """Gradient of ``sum(d(out . v)/d(ins) * w)`` w.r.t. ``ins`` and ``vs``."""
    f = lib.nn.functional
    outs = _outputs(fn(f, *ins))
    req = [t for t in ins if t.requires_grad]
    first = lib.autograd.grad(outs, req, vs, create_graph=True, allow_unused=True)
    terms = [(f * w).sum() for f, w in zip(first, ws) if f is not None and f.requires_grad]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return lib.autograd.grad(total, req + list(vs), allow_unused=True)


def _np(t, shape):
    if t is None:
        return np.zeros(shape)
    if isinstance(t, torch.Tensor):
        t = t.detach()
        return np.zeros(tuple(t.shape)) if t._is_zerotensor() else t.numpy()
    return t.detach().cpu().numpy()


def _total_mg(fn, arrays, vs, ws):
    """``sum(d(out . v)/d(ins) * w)`` in manygrad without a graph (finite differences)."""
    ins = _tensors(mg, arrays)
    outs = _outputs(fn(mg.nn.functional, *ins))
    req = [t for t in ins if t.requires_grad]
    first = mg.autograd.grad(outs, req, [mg.tensor(v) for v in vs], allow_unused=True)
    return sum(float((f.numpy() * w).sum()) for f, w in zip(first, ws) if f is not None)


def _finite_differences(fn, arrays, vs, ws, eps=1e-6):
    """Central differences of ``_total_mg`` w.r.t. each float input and each ``v``."""
    slots = [a for k, a in arrays if k == "grad"] + list(vs)
    res = []
    for a in slots:
        num = np.zeros(a.shape)
        flat, nflat = a.reshape(-1), num.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            hi = _total_mg(fn, arrays, vs, ws)
            flat[j] = old - eps
            lo = _total_mg(fn, arrays, vs, ws)
            flat[j] = old
            nflat[j] = (hi - lo) / (2 * eps)
        res.append(num)
    return res


@pytest.mark.filterwarnings("ignore:.*is deprecated. Use `nn.functional.interpolate`")
# NOTE: the second fake GPU adds nothing to the maths checked here
@pytest.mark.parametrize("device", [d for d in DEVICES if d != "fakegpu:1"])
@pytest.mark.parametrize("fn,specs,fd_only", CASES)
def test_double_backward(fn, specs, fd_only, device):
    oracle = _ORACLE.get(fn) or _ORACLE.setdefault(fn, _oracle(fn, specs, fd_only))
    arrays, vs, ws, want, tol = oracle
    m_in = _tensors(mg, arrays, device)
    if vs is None:  # NOTE: PyTorch refuses a gradient for some input: so must manygrad
        with pytest.raises(RuntimeError):
            fn(mg.nn.functional, *m_in)
        return
    m_vs = [mg.tensor(v, device=device, requires_grad=True) for v in vs]
    got = _second(mg, fn, m_in, m_vs, [mg.tensor(w, device=device) for w in ws])
    got = [_np(t, w.shape) for t, w in zip(got, want)]
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, err_msg=f"second derivative of input {i}", **tol)


_ORACLE: dict = {}  # fn -> what _oracle gives (the same for every device)


def _oracle(fn, specs, fd_only):
    """Inputs, ``v``, ``w``, the expected second derivatives and their tolerance: PyTorch's,
    or central differences where PyTorch does not differentiate the op twice (``vs`` None:
    PyTorch refuses the call)."""
    rng = np.random.default_rng(0)
    arrays = _inputs(specs, rng)
    t_in = _tensors(torch, arrays)
    try:
        t_out = _outputs(fn(torch.nn.functional, *t_in))
    except RuntimeError:
        return arrays, None, None, None, None
    vs = [rng.standard_normal(tuple(o.shape)) for o in t_out]
    ws = [rng.standard_normal(a.shape) for k, a in arrays if k == "grad"]
    shapes = [a.shape for k, a in arrays if k == "grad"] + [v.shape for v in vs]
    if not fd_only:
        try:
            t_vs = [torch.tensor(v, requires_grad=True) for v in vs]
            want = _second(torch, fn, t_in, t_vs, [torch.tensor(w) for w in ws])
            return arrays, vs, ws, [_np(t, s) for t, s in zip(want, shapes)], _EXACT
        except RuntimeError:
            pass  # PyTorch does not differentiate this op twice
    return arrays, vs, ws, _finite_differences(fn, arrays, vs, ws), _FD


_EXACT, _FD = dict(rtol=1e-7, atol=1e-9), dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [1, (2, 3), (3, 5)])
def test_adaptive_max_pool_picks_as_pytorch(size, device):
    """Ties go to the first maximum in raster order, NaN windows to their last NaN."""
    a = np.array([[[[1.0, np.nan, 3, np.nan, 2], [0, 5, np.nan, 1, 5], [5, 2, 3, 5, 5]]]])
    want_y, want_i = torch.nn.functional.adaptive_max_pool2d(torch.tensor(a), size, True)
    x = mg.tensor(a, device=device, requires_grad=True)
    y, i = mg.nn.functional.adaptive_max_pool2d(x, size, True)
    np.testing.assert_array_equal(i.cpu().numpy(), want_i.numpy())
    np.testing.assert_array_equal(y.detach().cpu().numpy(), want_y.numpy())

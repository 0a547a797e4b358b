"""interpolate(antialias=True): bilinear and bicubic resampling that averages over each
output pixel's footprint, equal to PyTorch's values and gradients on every device."""

import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")

CASES = [
    ("bilinear", {"size": (5, 4)}), ("bilinear", {"size": (9, 13)}),
    ("bilinear", {"scale_factor": 0.37}), ("bilinear", {"size": (30, 20)}),
    ("bilinear", {"size": (5, 4), "align_corners": True}),
    ("bicubic", {"size": (5, 4)}), ("bicubic", {"scale_factor": 0.5}),
    ("bicubic", {"size": (30, 7), "align_corners": True}),
]  # fmt: skip


@pytest.mark.parametrize("mode,kw", CASES, ids=[f"{m}-{i}" for i, (m, _) in enumerate(CASES)])
def test_antialias_equals_pytorch(mode, kw):
    check_op(lambda x: mg.nn.functional.interpolate(x, mode=mode, antialias=True, **kw),
             [(2, 3, 17, 13)],
             torch_fn=lambda x: torch.nn.functional.interpolate(x, mode=mode, antialias=True, **kw))  # fmt: skip


def test_antialias_needs_bilinear_or_bicubic():
    with pytest.raises(NotImplementedError, match="bilinear and bicubic"):
        mg.nn.functional.interpolate(mg.ones(1, 1, 4, 4), size=2, mode="nearest", antialias=True)

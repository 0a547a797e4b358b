"""``SyncBatchNorm``: batch normalization whose statistics cover the whole batch across the
ranks of ``manygrad.distributed`` (Ioffe & Szegedy, 2015; synchronized as in PyTorch), and
``DataParallel``, which manygrad runs on one device.

On one process, or outside training, ``SyncBatchNorm`` is ``BatchNorm``.

Example:
    >>> model = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    >>> model = mg.nn.parallel.DistributedDataParallel(model)
"""

from __future__ import annotations

import warnings

from ..autograd import Function
from ..errors import ShapeError
from ..ops._dtype_rules import check_norm_params
from .module import Module
from .normalization import _BatchNorm


class _AllReduceSum(Function):
    """The sum over the ranks of ``group``; its gradient is the sum over those ranks of the
    gradients (every rank's loss depends on every rank's share)."""

    def forward(self, x, group=None):
        self.group = group
        return _all_reduce(x, group)

    def backward(self, g):
        return _all_reduce(g, self.group)


def _all_reduce(x, group):
    from .. import distributed as dist
    from ..tensor import Tensor

    out = Tensor._wrap(x.copy(), None)
    dist.all_reduce(out, group=group)
    return out._data


def _group_size(group) -> int:
    """The number of ranks that share statistics (1: none; -1: not a member of ``group``)."""
    from .. import distributed as dist

    if not dist.is_initialized():
        return 1
    return dist.get_world_size(group)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over inputs of 2 or more dims (N, C, ...), with batch statistics taken over
    all ranks of ``process_group`` while training in a group of more than one rank.

    Args: as ``BatchNorm2d``, and
        process_group: the ranks whose batches are normalised together (default: every
            rank), e.g. one group per machine from ``dist.new_subgroups()``. On a rank
            outside the group (``GroupMember.NON_GROUP_MEMBER``) it is BatchNorm.

    Unlike PyTorch's, it also synchronises CPU tensors (PyTorch requires GPU inputs).

    Example:
        >>> group, _ = dist.new_subgroups(2)              # ranks {0, 1}, {2, 3}, ...
        >>> bn = mg.nn.SyncBatchNorm(16, process_group=group)
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None, *, bias: bool = True) -> None:  # fmt: skip
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)  # fmt: skip
        self.process_group = process_group

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {input.dim()}D)")
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")

    def forward(self, input):
        self._check_input_dim(input)
        group = self.process_group
        if not self.training or _group_size(group) <= 1:
            return super().forward(input)
        c = input.shape[1]
        if c != self.num_features:
            raise ShapeError(f"SyncBatchNorm: expected {self.num_features} channels, got {c}")
        # NOTE: the parameters' dtypes follow batch_norm's rule, as on one process
        check_norm_params("SyncBatchNorm", input, (("weight", self.weight), ("bias", self.bias),
                          ("running_mean", self.running_mean),
                          ("running_var", self.running_var)))  # fmt: skip
        dims = [0] + list(range(2, input.dim()))
        count = input.numel() // c
        x = input.float() if input.dtype.itemsize < 4 else input
        # NOTE: one all-reduce carries the sums, the sums of squares and the count
        local = (x.sum(dims), (x * x).sum(dims), x.new_full((1,), float(count)))
        from ..ops import cat

        stats = _AllReduceSum.apply(cat(local, 0), group=group)
        total = stats[2 * c]
        mean, sq = stats[:c] / total, stats[c : 2 * c] / total
        var = sq - mean * mean
        if self.track_running_stats and self.running_mean is not None:
            self.num_batches_tracked._data += 1
            m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                 else self.momentum)  # fmt: skip
            unbiased = var.detach() * total.detach() / (total.detach() - 1).clamp(min=1)
            self.running_mean.mul_(1 - m).add_(mean.detach().to(self.running_mean.dtype) * m)
            self.running_var.mul_(1 - m).add_(unbiased.to(self.running_var.dtype) * m)
        shape = [1, c] + [1] * (input.dim() - 2)
        y = (x - mean.reshape(shape)) * (var.reshape(shape) + self.eps).rsqrt()
        if self.weight is not None:
            y = y * self.weight.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.reshape(shape)
        return y.to(input.dtype)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm (and SyncBatchNorm) inside replaced by a
        SyncBatchNorm over ``process_group`` that keeps its parameters, buffers and mode.

        Example:
            >>> model = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model, group)
        """
        out = module
        if isinstance(module, _BatchNorm):
            out = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group,
                      bias=module.bias is not None)  # fmt: skip
            if module.affine:
                out.weight, out.bias = module.weight, module.bias
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return out


class DataParallel(Module):
    """``nn.DataParallel``: manygrad runs the wrapped module on one device (its own);
    several GPUs train together through ``DistributedDataParallel``. State dicts carry the
    ``module.`` prefix, as PyTorch's."""

    _warned = False

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids, self.output_device, self.dim = device_ids, output_device, dim
        if device_ids is not None and len(device_ids) > 1 and not DataParallel._warned:
            warnings.warn(
                "DataParallel: manygrad runs the module on one device; for several GPUs use "
                "DistributedDataParallel with `manygrad launch` (docs/distributed.md)",
                UserWarning,
                stacklevel=2,
            )
            DataParallel._warned = True

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)


__all__ = ["SyncBatchNorm", "DataParallel"]

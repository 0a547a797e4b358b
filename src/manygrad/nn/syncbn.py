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
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, _BatchNorm


class _AllReduceSum(Function):
    """The sum over ranks; its gradient is the sum over ranks of the gradients (every
    rank's loss depends on every rank's share)."""

    def forward(self, x):
        from .. import distributed as dist
        from ..tensor import Tensor

        out = Tensor._wrap(x.copy(), None)
        dist.all_reduce(out)
        return out._data

    def backward(self, g):
        from .. import distributed as dist
        from ..tensor import Tensor

        out = Tensor._wrap(g.copy(), None)
        dist.all_reduce(out)
        return out._data


def _world() -> int:
    from .. import distributed as dist

    return dist.get_world_size() if dist.is_initialized() else 1


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over inputs of 2 or more dims (N, C, ...), with batch statistics taken over
    all ranks while training in a process group of more than one rank.

    Args: as ``BatchNorm2d``; ``process_group`` must be None (the default group).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, process_group=None,
                 device=None, dtype=None) -> None:  # fmt: skip
        if process_group is not None:
            raise ValueError("SyncBatchNorm: only the default process group (None) is supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype)  # fmt: skip
        self.process_group = None

    def _check_input_dim(self, input) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected at least 2D input (got {input.dim()}D)")

    def forward(self, input):
        self._check_input_dim(input)
        if not self.training or _world() == 1:
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

        stats = _AllReduceSum.apply(cat(local, 0))
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
        """``module`` with every BatchNorm1d/2d/3d inside replaced by a SyncBatchNorm that
        keeps its parameters, buffers and mode."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d, BatchNorm3d)):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats, process_group)  # fmt: skip
            if module.affine:
                new.weight, new.bias = module.weight, module.bias
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
            new.train(module.training)
            return new
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert_sync_batchnorm(child, process_group))
        return module


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

"""``AdaptiveLogSoftmaxWithLoss`` (Grave et al., 2017, "Efficient softmax approximation for
GPUs"): frequent classes in a head softmax, rare ones in tail clusters reached through one
head entry each, with smaller projections; the loss of a large vocabulary for a fraction of
the cost.

Example:
    >>> asm = mg.nn.AdaptiveLogSoftmaxWithLoss(64, 10000, cutoffs=[100, 1000])
    >>> out, loss = asm(hidden, target)        # out: log p(target) per row
"""

from __future__ import annotations

from collections import namedtuple

from .. import ops as F
from ..tensor import Tensor
from .containers import ModuleList, Sequential
from .linear import Linear
from .module import Module

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """An efficient softmax over ``n_classes`` sorted by frequency.

    Args:
        in_features: width of the input rows.
        n_classes: number of classes (the most frequent first).
        cutoffs: increasing class indices where the clusters start, e.g. ``[100, 1000]``:
            classes below 100 in the head, 100-999 in the first tail cluster, the rest in
            the second.
        div_value: each tail cluster's projection is ``in_features / div_value**(i + 1)``
            wide (default 4.0).
        head_bias: a bias in the head (default False).

    ``forward(input, target)`` returns ``(output, loss)``: the log-probability of each
    target and their negative mean; ``log_prob(input)`` gives every class's, ``predict``
    the most likely class.
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):  # fmt: skip
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1"
            )
        kw = {"device": device, "dtype": dtype}
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))  # fmt: skip

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor):
        if target_.dim() == 1:
            if input_.shape[0] != target_.shape[0]:
                raise RuntimeError(
                    "Input and target should have the same size in the batch dimension."
                )
            if input_.dim() != 2:
                raise RuntimeError(
                    "1D target tensor expects 2D input tensors, but found inputs with size "
                    f"{tuple(input_.shape)}"
                )
        elif target_.dim() == 0:
            if input_.dim() != 1:
                raise RuntimeError(
                    "0D target tensor expects 1D input tensors, but found inputs with size "
                    f"{tuple(input_.shape)}"
                )
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")
        batched = target_.dim() > 0
        x = input_ if batched else input_.unsqueeze(0)
        target = (target_ if batched else target_.unsqueeze(0)).long()
        if bool(((target < 0) | (target >= self.n_classes)).any()):
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                f"[{int(target.min())}, {int(target.max())}] were found. "
            )
        n = target.shape[0]
        # NOTE: the cluster of each target: how many cluster starts it has reached
        cluster = sum((target >= c).long() for c in self.cutoffs[:-1])
        gather = F.where(cluster == 0, target, cluster - 1 + self.shortlist_size)
        output = x.new_zeros(n)
        for i in range(1, self.n_clusters + 1):
            rows = F.nonzero(cluster == i).reshape(-1)
            if rows.numel() == 0:
                continue
            rel = target.index_select(0, rows) - self.cutoffs[i - 1]
            logp = F.log_softmax(self.tail[i - 1](x.index_select(0, rows)), 1)
            local = logp.gather(1, rel.unsqueeze(1)).squeeze(1)
            output = output.index_copy(0, rows, local)
        head_logprob = F.log_softmax(self.head(x), 1)
        output = output + head_logprob.gather(1, gather.unsqueeze(1)).reshape(n)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, x: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, 1)
        parts = [head_logprob[:, : self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](x), 1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return F.cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:  # noqa: A002
        """Log-probabilities of every class, ``(N, n_classes)``."""
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        out = self._get_full_log_prob(x, self.head(x))
        return out if batched else out.squeeze(0)

    def predict(self, input: Tensor) -> Tensor:  # noqa: A002
        """The most likely class of each row (the full softmax only where the head's best
        entry is a cluster)."""
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)
        head_output = self.head(x)
        output = head_output.argmax(1)
        outside = output >= self.shortlist_size
        if bool(outside.any()):
            rows = F.nonzero(outside).reshape(-1)
            full = self._get_full_log_prob(x.index_select(0, rows),
                                           head_output.index_select(0, rows))  # fmt: skip
            output = output.index_copy(0, rows, full.argmax(1))
        return output if batched else output.squeeze(0)

"""The training step as a CUDA graph (``fit(..., cuda_graph=True)``, ``--cuda-graph``).

After ``warmup`` eager steps on real batches, the next full batch is copied into static
input tensors and the step (forward, backward, optimizer; the loss scaler too) is captured,
then replayed for every later full batch after copying the batch in. The scheduler steps on
the host between replays: capturable optimizers read lr from device buffers refreshed
before each replay. A batch of another shape (an epoch's last short batch) runs eagerly; a
full batch whose shape differs from the captured one (never in ``fit``) captures again.
Metrics are read outside the graph: the loss is copied out of its static buffer.

Data-parallel training keeps DDP's all-reduce *outside* the graphs: forward and backward
are captured under ``no_sync()`` into one graph, the gradients are averaged eagerly
(``finish_gradient_synchronization``, a collective on the host side of the step), and the
optimizer step is a second graph. Collectives never run inside a capture.
"""

from __future__ import annotations

from collections.abc import Callable

from ..cuda import graphs
from ..errors import DeviceError


def check_device(device) -> None:
    """CUDA graphs need a GPU or the fake GPU: a clear error on the CPU."""
    if device.type == "cpu":
        raise DeviceError(
            "cuda_graph=True needs a GPU (--device cuda) or the fake GPU (--device fakegpu); "
            "the CPU runs each op as it comes, with nothing to capture"
        )
    if device.type == "cuda" and not graphs.real_capture_enabled():
        raise DeviceError(
            "CUDA graphs on a real GPU have not been verified yet and are off by default; "
            "set MANYGRAD_CUDA_GRAPHS=1 to try them, or train without --cuda-graph"
        )


class GraphedStep:
    """Runs ``fwd_bwd(xb, yb, weight) -> (out, loss)`` then ``opt_step()`` as CUDA graphs.

    Args:
        fwd_bwd: forward, loss and backward of one batch (eager code, captured as is).
        opt_step: the optimizer (and scaler) step.
        reduce: averages gradients between ranks (DDP), run eagerly between two graphs;
            None for one process (a single graph then).
        no_sync: a context manager that turns DDP's in-backward all-reduce off.
        warmup: eager steps before the first capture (default 3).
    """

    def __init__(
        self,
        fwd_bwd: Callable,
        opt_step: Callable,
        reduce: Callable | None = None,
        no_sync: Callable | None = None,
        warmup: int = 3,
    ):
        self.fwd_bwd, self.opt_step = fwd_bwd, opt_step
        self.reduce, self.no_sync = reduce, no_sync
        self.warmup = warmup
        self.full_shape = None  # shape of the batches that run as graphs
        self.key = None
        self.graphs: list = []
        self.static = None
        self.captures = self.replays = self.eager_steps = 0

    def __call__(self, xb, yb, weight: float = 1.0):
        if self.full_shape is None or xb.shape[0] > self.full_shape[0]:
            self.full_shape = tuple(xb.shape)  # NOTE: the largest batch is a full one
        if tuple(xb.shape) != self.full_shape or self.warmup > 0:
            self.warmup -= tuple(xb.shape) == self.full_shape
            return self._eager(xb, yb, weight)
        key = (tuple(xb.shape), xb.dtype, tuple(yb.shape), yb.dtype, weight)
        if key != self.key:
            self._capture(xb, yb, weight, key)
        sx, sy, out, loss = self.static
        sx.copy_(xb)
        sy.copy_(yb)
        self._replay()
        return out, loss.detach().clone()

    def _eager(self, xb, yb, weight):
        self.eager_steps += 1
        out, loss = self.fwd_bwd(xb, yb, weight)
        self.opt_step()
        return out, loss

    def _capture(self, xb, yb, weight, key) -> None:
        self.graphs, self.static = [], None
        sx, sy = xb.detach().clone(), yb.detach().clone()
        first = graphs.CUDAGraph()
        pool = graphs.graph_pool_handle()
        with graphs.graph(first, pool=pool):
            if self.no_sync is not None and self.reduce is not None:
                with self.no_sync():
                    out, loss = self.fwd_bwd(sx, sy, weight)
            else:
                out, loss = self.fwd_bwd(sx, sy, weight)
                if self.reduce is None:
                    self.opt_step()
        self.graphs.append(first)
        if self.reduce is not None:
            second = graphs.CUDAGraph()
            with graphs.graph(second, pool=pool):
                self.opt_step()
            self.graphs.append(second)
        self.static = (sx, sy, out.detach(), loss.detach())
        self.key = key
        self.captures += 1

    def _replay(self) -> None:
        self.graphs[0].replay()
        if self.reduce is not None:
            self.reduce()
            self.graphs[1].replay()
        self.replays += 1

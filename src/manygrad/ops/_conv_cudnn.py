"""conv2d on a GPU through cuDNN graphs (``manygrad.cuda.cudnn_graphs`` / ``cudnn_train``):
the forward, the input and the weight gradients as fast paths, each falling back to its
reference with one warning when cuDNN refuses a call. Off until a GPU run verified it."""

from __future__ import annotations

from .. import backend
from .conv import Conv, _same_dtype


def takes(x, g) -> bool:
    """conv2d on a GPU through cuDNN: ungrouped, even padding, and the forward and both
    gradients switched on (off until a GPU run verified the wiring; see kernels.fastpath)."""
    if g.G != 1 or g.pads[0] != g.pads[1] or g.pads[2] != g.pads[3]:
        return False
    from ..kernels import fastpath

    return (fastpath.wired("cudnn.conv2d", x) and fastpath.enabled("cudnn.conv2d_dgrad")
            and fastpath.enabled("cudnn.conv2d_wgrad"))  # fmt: skip


class CudnnConv2d(Conv):
    """conv2d through cuDNN graphs (forward, input and weight gradients); each call that
    cuDNN refuses runs the reference with one warning. Double backward as ``Conv``'s."""

    def forward(self, x, w, b, geom, shape4, keep_cols):
        from ..kernels import fastpath

        self.w, self.geom, self.xshape, self.x, self.shape4 = w, geom, x.shape, x, shape4
        self.conv = ((geom.sh, geom.sw), (geom.pads[0], geom.pads[2]), (geom.dh, geom.dw))
        x4, w4 = x.reshape(shape4[0]), w.reshape(shape4[1])
        self.x4 = x4 if keep_cols else None
        y = fastpath.call("cudnn.conv2d", x4, w4, b, *self.conv)
        return _same_dtype(y, x).reshape(shape4[2])

    def backward(self, gy):
        from ..kernels import fastpath

        nx, nw, nb = self.needs_input_grad
        g = self.geom
        gy4 = gy.reshape(g.N, g.O, g.Ho, g.Wo)
        w4 = self.w.reshape(self.shape4[1])
        gx = gw = gb = None
        if nx:
            gx = fastpath.call("cudnn.conv2d_dgrad", gy4, w4, self.shape4[0], *self.conv)
            gx = gx.reshape(self.xshape)
        if nw:
            gw = fastpath.call("cudnn.conv2d_wgrad", self.x4, gy4, self.shape4[1], *self.conv)
            gw = gw.reshape(self.w.shape)
        if nb:
            gb = gy4.sum(axis=(0, 2, 3), dtype=backend.array_module(gy).float32)
            gb = gb.astype(gy.dtype, copy=False)
        return gx, gw, gb

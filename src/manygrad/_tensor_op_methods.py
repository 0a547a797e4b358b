"""``Tensor`` methods that forward, argument for argument, to the functional op of the
same name in ``manygrad.ops`` (``x.sort(dim)`` is ``mg.sort(x, dim)``)."""

from __future__ import annotations

import sys

from ._tensor_math_methods import MathMethods


def _ops():
    # NOTE: manygrad.ops imports tensor.py, which imports this module: look it up late
    return sys.modules["manygrad.ops"]


class OpMethods(MathMethods):
    """Forwarding methods (sorting, scatter, shaping, products); a base of ``TensorMethods``."""

    __slots__ = ()

    def sort(self, *args, **kwargs):
        return _ops().sort(self, *args, **kwargs)

    def argsort(self, *args, **kwargs):
        return _ops().argsort(self, *args, **kwargs)

    def msort(self, *args, **kwargs):
        return _ops().msort(self, *args, **kwargs)

    def topk(self, *args, **kwargs):
        return _ops().topk(self, *args, **kwargs)

    def kthvalue(self, *args, **kwargs):
        return _ops().kthvalue(self, *args, **kwargs)

    def median(self, *args, **kwargs):
        return _ops().median(self, *args, **kwargs)

    def nanmedian(self, *args, **kwargs):
        return _ops().nanmedian(self, *args, **kwargs)

    def mode(self, *args, **kwargs):
        return _ops().mode(self, *args, **kwargs)

    def quantile(self, *args, **kwargs):
        return _ops().quantile(self, *args, **kwargs)

    def nanquantile(self, *args, **kwargs):
        return _ops().nanquantile(self, *args, **kwargs)

    def unique(self, *args, **kwargs):
        return _ops().unique(self, *args, **kwargs)

    def unique_consecutive(self, *args, **kwargs):
        return _ops().unique_consecutive(self, *args, **kwargs)

    def nonzero(self, *args, **kwargs):
        return _ops().nonzero(self, *args, **kwargs)

    def argwhere(self, *args, **kwargs):
        return _ops().argwhere(self, *args, **kwargs)

    def count_nonzero(self, *args, **kwargs):
        return _ops().count_nonzero(self, *args, **kwargs)

    def bincount(self, *args, **kwargs):
        return _ops().bincount(self, *args, **kwargs)

    def histc(self, *args, **kwargs):
        return _ops().histc(self, *args, **kwargs)

    def scatter(self, *args, **kwargs):
        return _ops().scatter(self, *args, **kwargs)

    def scatter_reduce(self, *args, **kwargs):
        return _ops().scatter_reduce(self, *args, **kwargs)

    def index_add(self, *args, **kwargs):
        return _ops().index_add(self, *args, **kwargs)

    def index_fill(self, *args, **kwargs):
        return _ops().index_fill(self, *args, **kwargs)

    def index_copy(self, *args, **kwargs):
        return _ops().index_copy(self, *args, **kwargs)

    def masked_select(self, *args, **kwargs):
        return _ops().masked_select(self, *args, **kwargs)

    def masked_scatter(self, *args, **kwargs):
        return _ops().masked_scatter(self, *args, **kwargs)

    def take(self, *args, **kwargs):
        return _ops().take(self, *args, **kwargs)

    def take_along_dim(self, *args, **kwargs):
        return _ops().take_along_dim(self, *args, **kwargs)

    def diag(self, *args, **kwargs):
        return _ops().diag(self, *args, **kwargs)

    def diag_embed(self, *args, **kwargs):
        return _ops().diag_embed(self, *args, **kwargs)

    def diagonal(self, *args, **kwargs):
        return _ops().diagonal(self, *args, **kwargs)

    def diff(self, *args, **kwargs):
        return _ops().diff(self, *args, **kwargs)

    def tile(self, *args, **kwargs):
        return _ops().tile(self, *args, **kwargs)

    def kron(self, *args, **kwargs):
        return _ops().kron(self, *args, **kwargs)

    def outer(self, *args, **kwargs):
        return _ops().outer(self, *args, **kwargs)

    def ger(self, *args, **kwargs):
        return _ops().ger(self, *args, **kwargs)

    def inner(self, *args, **kwargs):
        return _ops().inner(self, *args, **kwargs)

    def dot(self, *args, **kwargs):
        return _ops().dot(self, *args, **kwargs)

    def vdot(self, *args, **kwargs):
        return _ops().vdot(self, *args, **kwargs)

    def mv(self, *args, **kwargs):
        return _ops().mv(self, *args, **kwargs)

    def addmm(self, *args, **kwargs):
        return _ops().addmm(self, *args, **kwargs)

    def addmv(self, *args, **kwargs):
        return _ops().addmv(self, *args, **kwargs)

    def addr(self, *args, **kwargs):
        return _ops().addr(self, *args, **kwargs)

    def baddbmm(self, *args, **kwargs):
        return _ops().baddbmm(self, *args, **kwargs)

    def addbmm(self, *args, **kwargs):
        return _ops().addbmm(self, *args, **kwargs)

    def cross(self, *args, **kwargs):
        return _ops().cross(self, *args, **kwargs)

    def dist(self, *args, **kwargs):
        return _ops().dist(self, *args, **kwargs)

    def trace(self, *args, **kwargs):
        return _ops().trace(self, *args, **kwargs)

    def fliplr(self, *args, **kwargs):
        return _ops().fliplr(self, *args, **kwargs)

    def flipud(self, *args, **kwargs):
        return _ops().flipud(self, *args, **kwargs)

    def rot90(self, *args, **kwargs):
        return _ops().rot90(self, *args, **kwargs)

    def repeat_interleave(self, *args, **kwargs):
        return _ops().repeat_interleave(self, *args, **kwargs)

    def unbind(self, *args, **kwargs):
        return _ops().unbind(self, *args, **kwargs)

    def broadcast_to(self, *args, **kwargs):
        return _ops().broadcast_to(self, *args, **kwargs)

    def swapaxes(self, *args, **kwargs):
        return _ops().swapaxes(self, *args, **kwargs)

    def swapdims(self, *args, **kwargs):
        return _ops().swapdims(self, *args, **kwargs)

    def moveaxis(self, *args, **kwargs):
        return _ops().moveaxis(self, *args, **kwargs)

    def cumprod(self, *args, **kwargs):
        return _ops().cumprod(self, *args, **kwargs)

    def cummax(self, *args, **kwargs):
        return _ops().cummax(self, *args, **kwargs)

    def cummin(self, *args, **kwargs):
        return _ops().cummin(self, *args, **kwargs)

    def logcumsumexp(self, *args, **kwargs):
        return _ops().logcumsumexp(self, *args, **kwargs)

    def aminmax(self, *args, **kwargs):
        return _ops().aminmax(self, *args, **kwargs)

    def nansum(self, *args, **kwargs):
        return _ops().nansum(self, *args, **kwargs)

    def nanmean(self, *args, **kwargs):
        return _ops().nanmean(self, *args, **kwargs)

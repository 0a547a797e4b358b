"""``linalg.eig`` and ``linalg.eigvals`` of general square matrices, with gradients.

The eigenvalues and eigenvectors are complex (complex64 for float32 and complex64 inputs,
complex128 otherwise), the eigenvectors of unit norm, as LAPACK's ``geev`` gives them (the
same routine PyTorch calls on the CPU). GPU arrays are decomposed on the host: CuPy has no
general eigensolver.

Gradients (PyTorch's formulas): ``eigvals``: ``V⁻ᴴ diag(gL) Vᴴ``; ``eig``:
``V⁻ᴴ (diag(gL) + (Vᴴ gV − Vᴴ V Re(diag(Vᴴ gV))) / Ē) Vᴴ`` with ``Ē_ij = conj(L_j − L_i)``.
A loss that depends on the eigenvectors' arbitrary phases is refused, as in PyTorch.
"""

from __future__ import annotations

import numpy as np  # host-ok: the decomposition runs on the host (no device eigensolver)

from .. import backend, return_types
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor

_Eig = return_types.linalg_eig


def _cdtype(dt) -> np.dtype:
    return np.dtype(np.complex64) if dt in (np.float32, np.complex64) else np.dtype(np.complex128)


def _host_eig(a):
    host = backend.to_numpy(a)
    w, v = np.linalg.eig(host)
    cdt = _cdtype(host.dtype)
    return w.astype(cdt, copy=False), v.astype(cdt, copy=False)


def _mh(x):
    return np.conj(np.swapaxes(x, -1, -2))


def _eig_grad(w, v, g_w, g_v):
    """``gA`` (complex, host) for eigenvalues ``w`` and unit eigenvectors ``v``."""
    n = w.shape[-1]
    if g_v is None:
        ga = np.zeros(v.shape, v.dtype)
    else:
        vhgv = _mh(v) @ g_v
        diag = np.diagonal(vhgv, 0, -2, -1)
        if not np.allclose(diag.imag, 0, rtol=1e-2, atol=1e-2):
            raise RuntimeError(
                "linalg_eig_backward: The eigenvectors in the complex case are specified up "
                "to multiplication by e^{i phi}. The specified loss function depends on this "
                "quantity, so it is ill-defined."
            )
        ga = vhgv - _mh(v) @ (v * diag.real[..., None, :])
        econj = np.conj(w)[..., None, :] - np.conj(w)[..., :, None]
        idx = np.arange(n)
        econj[..., idx, idx] = 1
        ga = ga / econj
    idx = np.arange(n)
    ga[..., idx, idx] = 0 if g_w is None else g_w
    return np.linalg.solve(_mh(v), ga @ _mh(v))


class Eig(Function):
    """Eigenvalues and eigenvectors packed as ``[V; L]`` (``n + 1`` rows)."""

    complex_ok = True

    def forward(self, a, want_vectors):
        xp = backend.array_module(a)
        w, v = _host_eig(a)
        self.w, self.v, self.vectors, self.in_dtype = w, v, want_vectors, a.dtype
        packed = np.concatenate([v, w[..., None, :]], -2) if want_vectors else w
        return backend.to_device(packed, backend.device_of(a)) if xp is not np else packed

    def backward(self, g):
        gh = backend.to_numpy(g)
        n = self.w.shape[-1]
        if self.vectors:
            g_v, g_w = gh[..., :n, :], gh[..., n, :]
        else:
            g_v, g_w = None, gh
        ga = _eig_grad(self.w, self.v, g_w, g_v)
        if np.dtype(self.in_dtype).kind != "c":
            ga = ga.real
        ga = ga.astype(self.in_dtype, copy=False)
        return backend.to_device(ga, backend.device_of(g)), None


def _check(A: Tensor, op: str) -> None:  # noqa: N803
    if not isinstance(A, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(A).__name__}")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ShapeError(f"{op}: A must be batches of square matrices, got shape {tuple(A.shape)}")
    if not (A.is_floating_point() or A.is_complex()):
        raise TypeError(f"{op}: expected a floating-point or complex tensor, got {A.dtype}")


def eigvals(input: Tensor) -> Tensor:
    """The eigenvalues of square matrices (complex), as ``torch.linalg.eigvals``."""
    _check(input, "linalg.eigvals")
    return Eig.apply(input, False)


def eig(input: Tensor):
    """``(eigenvalues, eigenvectors)`` (complex; unit-norm vectors in the columns) with
    ``A @ V = V @ diag(L)``, as ``torch.linalg.eig``."""
    _check(input, "linalg.eig")
    packed = Eig.apply(input, True)
    n = input.shape[-1]
    return _Eig((packed[..., n, :], packed[..., :n, :]))

"""LOBPCG: a few extreme eigenpairs of a symmetric positive definite (generalized)
eigenproblem ``A x = lambda B x``, as ``torch.lobpcg``.

Written with manygrad's tensor ops, so it runs on every device. Each iteration reads the
residual norms on the host (the stopping test), as in PyTorch.
"""

# ruff: noqa: N803, N806  (PyTorch's argument names A, B, X, iK; matrices named as in the maths)
from __future__ import annotations

import math

from ..autograd import Function, no_grad
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor

__all__ = ["lobpcg"]

_EPS = {"float32": 1.2e-07, "float64": 2.23e-16}  # PyTorch's machine epsilons here


class LobpcgShapeError(ShapeError, AssertionError):
    """A, B or X of the wrong shape (an AssertionError, as in PyTorch)."""


def _singular(what: str):
    from .linalg_extra import LinAlgError

    return LinAlgError(
        f"lobpcg: {what} is not positive definite (B must be positive definite and X of "
        "full rank); method='ortho' copes with nearly dependent bases"
    )


def _mm(M: Tensor | None, X: Tensor) -> Tensor:
    return X if M is None else M @ X


def _eye(n: int, like: Tensor) -> Tensor:
    from ..creation import eye

    return eye(n, dtype=like.dtype, device=like.device)


class LOBPCG:
    """The state of one LOBPCG run, which a ``tracker`` callable sees after each step:
    ``A``, ``B``, ``iK``, the iterates ``X`` (eigenvectors), ``E`` (eigenvalues), ``R``
    (residuals), ``S`` (the search basis), and the dicts ``iparams`` / ``fparams`` /
    ``bparams`` (settings) and ``ivars`` / ``fvars`` / ``bvars`` / ``tvars`` (``istep``,
    ``converged_count``, ``rerr``, ...). Setting ``bvars["force_stop"] = True`` stops it.

    ``method="basic"`` is Knyazev's (2001) LOBPCG, a Rayleigh-Ritz step on ``[X, W, P]``
    made B-orthonormal by a Cholesky factorisation. ``method="ortho"`` keeps the basis
    B-orthonormal with the SVQB orthogonalisation of Stathopoulos & Wu (2002) and the
    choice of P of Duersch et al. (2018), which copes with nearly dependent bases.
    """

    def __init__(self, A, B, X, iK, iparams, fparams, bparams, method, tracker):
        from ..creation import zeros

        self.A, self.B, self.iK, self.X = A, B, iK, X
        self.iparams, self.fparams, self.bparams = iparams, fparams, bparams
        self.method, self.tracker = method, tracker
        m, n = iparams["m"], iparams["n"]
        self.E = zeros(n, dtype=X.dtype, device=X.device)
        self.R = zeros(m, n, dtype=X.dtype, device=X.device)
        self.S = X
        self.P = None
        self.ivars: dict = {"istep": 0}
        self.fvars: dict = {}
        self.bvars: dict = {}
        self.tvars: dict = {}

    # -------------------------------------------------------------- the iteration
    def run(self) -> None:
        """Iterate until ``k`` eigenpairs have converged, ``niter`` steps have run, or
        the tracker sets ``bvars["force_stop"]``."""
        self._start()
        while not self._stop():
            self._step()

    def _stop(self) -> bool:
        left = self.ivars["iterations_left"]
        done = self.ivars["converged_count"] >= self.iparams["k"]
        return bool(self.bvars.get("force_stop", False)) or left == 0 or done

    def _eig(self, M: Tensor):
        """Eigenpairs of the small symmetric M, the wanted end first."""
        from .. import linalg
        from ..ops.movement import flip

        E, Z = linalg.eigh(M, UPLO="U")
        if self.bparams["largest"]:
            E, Z = flip(E, dims=(-1,)), flip(Z, dims=(-1,))
        return E, Z

    def _start(self) -> None:
        A, B, X = self.A, self.B, self.X
        x_norm = float(X.norm())
        self.fvars["X_norm"] = x_norm
        self.fvars["A_norm"] = float(_mm(A, X).norm()) / x_norm
        self.fvars["B_norm"] = float(_mm(B, X).norm()) / x_norm
        self.ivars.update(iterations_left=self.iparams["niter"], converged_count=0)
        C = self._b_normalizer(X)
        if C is None:
            raise _singular("X^T B X of the starting guess X")
        E, Z = self._eig(C.mT @ (X.mT @ (A @ X)) @ C)
        self.X = X @ (C @ Z)
        self.E = E
        self.S = self.X
        self._residual()

    def _step(self) -> None:
        from ..ops.movement import cat

        n, nc = self.iparams["n"], self.ivars["converged_count"]
        Xa = self.X[:, nc:]
        W = _mm(self.iK, self.R[:, nc:])
        if self.method == "basic":
            S = cat([W] + ([self.P] if self.P is not None else []), dim=1)
            if nc:  # NOTE: keep the search off the converged (locked) eigenvectors
                Xc = self.X[:, :nc]
                S = S - Xc @ (Xc.mT @ _mm(self.B, S))
            C = self._b_normalizer(cat([Xa, S], dim=1))
            if C is None:
                # NOTE: [X, W, P] lost rank (near convergence, or when 3n is close to m):
                # its new part is made B-orthonormal to X, dependent directions dropped
                for _ in range(2):
                    S = self._svqb(S - Xa @ (Xa.mT @ _mm(self.B, S)), True, self.fparams["tol"])
                C = self._b_normalizer(cat([Xa, S], dim=1))
                if C is None:
                    raise _singular("the search basis [X, W, P]")
            S = cat([Xa, S], dim=1)
            E, Z = self._eig(C.mT @ (S.mT @ (self.A @ S)) @ C)
            Y = C @ Z[:, : n - nc]
            self.P = S[:, n - nc :] @ Y[n - nc :]  # the W and P parts of the new X
        else:
            V = self.X if self.P is None else cat([self.X, self.P], dim=1)
            W = self._ortho(W, V)
            S = cat([Xa] + ([self.P] if self.P is not None else []) + [W], dim=1)
            E, Z = self._eig(S.mT @ (self.A @ S))
            Y = Z[:, : n - nc]
            # NOTE: P spans the rest of the Ritz space, B-orthonormal and B-orthogonal to
            # the new X: the columns of Z[:, n-nc:] mixed to cancel their X rows
            from .. import linalg

            Q = linalg.qr(Z[: n - nc, n - nc :].mT).Q
            self.P = S @ (Z[:, n - nc :] @ Q)
        X = self.X.clone()
        X[:, nc:] = S @ Y
        Ev = self.E.clone()
        Ev[nc:] = E[: n - nc]
        self.X, self.E, self.S = X, Ev, S
        self._residual()

    def _residual(self) -> None:
        """R = A X - B X diag(E), the converged count, and the step counters."""
        A, B, X, E = self.A, self.B, self.X, self.E
        self.R = A @ X - _mm(B, X) * E
        a, b = self.fvars["A_norm"], self.fvars["B_norm"]
        # NOTE: the backward-stable test of Duersch et al. (2018), section 4.3
        rerr = self.R.norm(2, (0,)) / (X.norm(2, (0,)) * (a + E.abs() * b))
        self.tvars["rerr"] = rerr
        count = 0
        for ok in (rerr < self.fparams["tol"]).tolist():
            if not ok:
                break  # NOTE: only a leading run counts, which keeps the pairs in order
            count += 1
        self.ivars["converged_count"] = max(count, self.ivars["converged_count"])
        self.ivars["iterations_left"] -= 1
        self.ivars["istep"] += 1
        if self.tracker is not None:
            self.tracker(self)

    # ------------------------------------------------------------ B-orthonormal bases
    def _b_normalizer(self, S: Tensor) -> Tensor | None:
        """C with ``C^T (S^T B S) C = I``: ``D R^-1``, R the Cholesky factor of the
        diagonally scaled ``D S^T B S D``; None where that is not positive definite."""
        from .. import linalg

        SBS = S.mT @ _mm(self.B, S)
        d = SBS.diagonal(0, -2, -1) ** -0.5
        R, info = linalg.cholesky_ex(SBS * d * d[:, None], upper=True)
        if int(info) != 0:
            return None
        return d[:, None] * linalg.solve_triangular(R, _eye(len(d), R), upper=True)

    def _svqb(self, U: Tensor, drop: bool, tau: float) -> Tensor:
        """U made B-orthonormal through the eigenpairs of its scaled Gram matrix; tiny
        eigenvalues are raised to ``tau * max`` (or, with ``drop``, their directions
        dropped). Exactly zero columns are dropped."""
        from .. import linalg

        if U.numel() == 0:
            return U
        d = (U.mT @ _mm(self.B, U)).diagonal(0, -2, -1)
        nz = (d != 0).tolist()
        if not all(nz):
            U = U[:, [i for i, ok in enumerate(nz) if ok]]
            if U.numel() == 0:
                return U
        UBU = U.mT @ _mm(self.B, U)
        d = UBU.diagonal(0, -2, -1) ** -0.5
        E, Z = linalg.eigh(UBU * d * d[:, None])
        t = tau * float(E.abs().max())
        if drop:
            keep = [i for i, e in enumerate(E.tolist()) if e > t]
            E, Z = E[keep], Z[:, keep]
        else:
            E = E.clamp(min=t)
        return (U * d) @ (Z * E**-0.5)

    def _ortho(self, U: Tensor, V: Tensor) -> Tensor:
        """U made B-orthonormal and B-orthogonal to the B-orthonormal V (Stathopoulos &
        Wu's block orthogonalisation, repeated until both errors are below ``ortho_tol``)."""
        ip, fp = self.iparams, self.fparams
        tol, use_drop = fp["ortho_tol"], self.bparams["ortho_use_drop"]
        bv_norm = float(_mm(self.B, V).norm())
        for i in range(ip["ortho_i_max"]):
            U = U - V @ (V.mT @ _mm(self.B, U))
            for j in range(ip["ortho_j_max"]):
                U = self._svqb(
                    U, use_drop, fp["ortho_tol_drop" if use_drop else "ortho_tol_replace"]
                )
                if U.numel() == 0:
                    return U  # every column of U lies in span(V)
                BU = _mm(self.B, U)
                err = float((U.mT @ BU - _eye(U.shape[1], U)).norm())
                err /= float(BU.norm()) * float(U.norm())
                self.fvars[f"ortho_UBUmI_rerr[{i}, {j}]"] = err
                if err < tol:
                    break
            err = float((V.mT @ BU).norm()) / (bv_norm * float(U.norm()))
            self.fvars[f"ortho_VBU_rerr[{i}]"] = err
            if err < tol:
                break
        return U


def _solve(A, k, B, X, n, iK, niter, tol, largest, method, tracker, oi, of, ob):
    """The forward: E (*, k) and X (*, m, k), one LOBPCG run per matrix of the batch."""
    from ..creation import empty, randn

    if A.ndim < 2 or A.shape[-2] != A.shape[-1]:
        raise LobpcgShapeError(f"lobpcg: A must be square (*, m, m), got shape {tuple(A.shape)}")
    if B is not None and tuple(B.shape) != tuple(A.shape):
        raise LobpcgShapeError(
            f"lobpcg: A and B must have the same shape, got {tuple(A.shape)} and {tuple(B.shape)}"
        )
    m = A.shape[-1]
    k = (1 if X is None else X.shape[-1]) if k is None else k
    n = (k if n is None else n) if X is None else X.shape[-1]
    if k > n:
        raise ValueError(f"lobpcg: k (={k}) eigenpairs need at least k columns in X, got {n}")
    if m < 3 * n:
        raise ValueError(
            f"LOBPCG algorithm is not applicable when the number of A rows (={m}) is smaller "
            f"than 3 x the number of requested eigenpairs (={n})"
        )
    method = "ortho" if method is None else method
    if method not in ("ortho", "basic"):
        raise ValueError(f"lobpcg: method must be 'ortho' or 'basic', got {method!r}")
    tol = _EPS[A.dtype.name] ** 0.5 if tol is None else tol
    iparams = {"m": m, "n": n, "k": k, "niter": 1000 if niter is None else niter}
    fparams = {"tol": tol}
    bparams = {"largest": True if largest is None else largest}
    if method == "ortho":
        iparams.update(oi or {})
        fparams.update(of or {})
        bparams.update(ob or {})
        iparams.setdefault("ortho_i_max", 3)
        iparams.setdefault("ortho_j_max", 3)
        for key in ("ortho_tol", "ortho_tol_drop", "ortho_tol_replace"):
            fparams.setdefault(key, tol)
        bparams.setdefault("ortho_use_drop", False)
    batch = tuple(A.shape[:-2])
    if X is not None and tuple(X.shape) != batch + (m, n):
        raise LobpcgShapeError(
            f"lobpcg: X must have shape {batch + (m, n)} (A's batch, m rows), got {tuple(X.shape)}"
        )
    count = math.prod(batch)
    bA = A.reshape(count, m, m)
    bB = None if B is None else B.reshape(count, m, m)
    bX = None if X is None else X.reshape(count, m, n).to(A.dtype)
    E = empty(count, k, dtype=A.dtype, device=A.device)
    V = empty(count, m, k, dtype=A.dtype, device=A.device)
    for i in range(count):
        x = randn(m, n, dtype=A.dtype, device=A.device) if bX is None else bX[i].clone()
        iparams["batch_index"] = i
        run = LOBPCG(bA[i], None if bB is None else bB[i], x, iK,
                     iparams, fparams, bparams, method, tracker)  # fmt: skip
        run.run()
        E[i], V[i] = run.E[:k], run.X[:, :k]
    return E.reshape(batch + (k,)), V.reshape(batch + (m, k))


class _LobpcgFn(Function):
    """E, X of lobpcg with the gradient of an exact eigendecomposition (B = I only)."""

    @staticmethod
    def forward(ctx, A, B, *rest):
        E, U = _solve(A, rest[0], B, *rest[1:])
        ctx.save_for_backward(A, E, U)
        ctx.has_b = B is not None
        return E, U

    @staticmethod
    def backward(ctx, gE, gU):
        from .. import linalg

        if ctx.has_b:
            raise ValueError("lobpcg.backward does not support backward with B != I yet.")
        A, E, U = ctx.saved_tensors
        k = E.shape[-1]
        Ut = U.mT
        # within span(U): the usual eigenvector sensitivities 1 / (e_j - e_i)
        from .elementwise import where

        diag = _eye(k, E) > 0
        F = where(diag, 1.0, E.unsqueeze(-2) - E.unsqueeze(-1))
        inner = where(diag, 0.0, Ut @ gU / F)
        inner = inner + (gE.unsqueeze(-1) * _eye(k, gE))
        grad = U @ inner @ Ut
        # NOTE: outside span(U), the Sylvester equation (A_perp - e_j) y_j = Q^T gU_j, solved
        # in the eigenbasis of A restricted to an orthonormal basis Q of the complement
        Q = linalg.qr(U, mode="complete").Q[..., k:]
        lam, W = linalg.eigh(Q.mT @ A @ Q)
        QW = Q @ W
        Y = QW @ ((QW.mT @ gU) / (lam.unsqueeze(-1) - E.unsqueeze(-2)))
        grad = grad - Y @ Ut
        return (grad, None) + (None,) * 12


def lobpcg(
    A: Tensor,
    k: int | None = None,
    B: Tensor | None = None,
    X: Tensor | None = None,
    n: int | None = None,
    iK: Tensor | None = None,
    niter: int | None = None,
    tol: float | None = None,
    largest: bool | None = None,
    method: str | None = None,
    tracker=None,
    ortho_iparams: dict | None = None,
    ortho_fparams: dict | None = None,
    ortho_bparams: dict | None = None,
) -> tuple[Tensor, Tensor]:
    """The ``k`` largest (or smallest) eigenvalues and eigenvectors of the symmetric
    positive definite generalized eigenproblem ``A x = lambda B x``, found by LOBPCG
    (Knyazev 2001), as ``torch.lobpcg``.

    Returns ``(E, X)``: E (*, k) the eigenvalues (largest first, or smallest first when
    ``largest=False``), X (*, m, k) the B-orthonormal eigenvectors. A and B may be batched;
    sparse ones are made dense. The gradient with respect to A is that of an exact
    eigendecomposition of ``(A + A^T) / 2`` (PyTorch's); with B given, backward raises.
    The number of rows m must be at least 3 * n.

    Args:
        A: the symmetric matrix (*, m, m), float32 or float64.
        k: the number of eigenpairs. Default: X's columns, else 1.
        B: the symmetric positive definite matrix (*, m, m). Default: the identity.
        X: the starting guess (*, m, n), n >= k. Default: random (mg.randn), n columns.
        n: the number of columns of the random guess. Default: k.
        iK: a preconditioner (m, m), applied to the residuals. Default: none.
        niter: the most iterations (-1: until convergence). Default: 1000.
        tol: the residual tolerance. Default: sqrt of the dtype's epsilon.
        largest: find the largest eigenvalues (else the smallest). Default: True.
        method: "ortho" (robust, the default) or "basic".
        tracker: a callable given the ``LOBPCG`` state after each step.
        ortho_iparams, ortho_fparams, ortho_bparams: settings of "ortho"
            (``ortho_i_max``, ``ortho_j_max``, ``ortho_tol``, ``ortho_tol_drop``,
            ``ortho_tol_replace``, ``ortho_use_drop``).

    Example:
        >>> M = mg.randn(30, 30, dtype=mg.float64)
        >>> E, X = mg.lobpcg(M @ M.mT + 30 * mg.eye(30, dtype=mg.float64), k=2)
    """
    if not isinstance(A, Tensor):
        raise TypeError(f"lobpcg: A must be a tensor, got {type(A).__name__}")
    A = A.to_dense() if getattr(A, "is_sparse", False) else A
    if B is not None and getattr(B, "is_sparse", False):
        B = B.to_dense()
    for name, t in (("A", A), ("B", B), ("X", X), ("iK", iK)):
        if t is not None and t.dtype.name not in _EPS:
            raise DTypeError(f"lobpcg: {name} must be float32 or float64, got {t.dtype}")
    rest = (k, X, n, iK, niter, tol, largest, method, tracker,
            ortho_iparams, ortho_fparams, ortho_bparams)  # fmt: skip
    from .. import autograd

    if autograd.is_grad_enabled() and (A.requires_grad or (B is not None and B.requires_grad)):
        # NOTE: as PyTorch, the gradient is taken at (A + A^T) / 2, so that it is symmetric
        A_sym = (A + A.mT) / 2
        B_sym = None if B is None else (B + B.mT) / 2
        return _LobpcgFn.apply(A_sym, B_sym, *rest)
    with no_grad():
        return _solve(A, k, B, *rest[1:])

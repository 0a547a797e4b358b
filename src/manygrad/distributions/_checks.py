"""The argument checks of the distributions, read back from the device once per call.

PyTorch reads each check's result on the host as soon as it is made (one GPU sync per
parameter, and more when a distribution is built on others: ``LogNormal`` checks its
``Normal``, ``Beta`` its ``Dirichlet``). Here a check made inside a constructor or a
``log_prob`` / ``cdf`` call waits until the outermost such call ends; then all of its
checks are read together (one sync) and the first that failed, in PyTorch's order, raises
PyTorch's error. A check made outside such a call is read at once.

Example:
    >>> submit([(constraints.positive.check(scale), lambda: ValueError("..."))])
"""

from __future__ import annotations

import functools
import threading

from .. import backend

_local = threading.local()  # .pending: the checks of the open outermost call, or None


def submit(checks) -> None:
    """Raise the error of the first failing check; each check is ``(valid, make_error)``
    with ``valid`` a bool tensor (or bool) and ``make_error()`` the exception to raise (or
    None for a check that only warns). Inside a collecting call the checks wait for its
    end."""
    pending = getattr(_local, "pending", None)
    if pending is not None:
        pending.extend(checks)
        return
    error = first_failure(checks)
    if error is not None:
        raise error


def first_failure(checks):
    """The error of the first check that does not hold, or None: one host read per device
    for all of them."""
    if not checks:
        return None
    from ..ops import stack
    from ..tensor import Tensor

    flags: list = [None] * len(checks)
    by_device: dict = {}
    for i, (valid, _) in enumerate(checks):
        if isinstance(valid, Tensor):
            by_device.setdefault(str(valid.device), []).append(i)
        else:
            flags[i] = bool(valid)
    for device, idx in by_device.items():
        if device == "cpu":  # NOTE: no sync to save: each is read when its turn comes
            for i in idx:
                flags[i] = lambda v=checks[i][0]: bool(v.all())
            continue
        alls = [checks[i][0].all() for i in idx]
        for i, ok in zip(idx, stack(alls).tolist()):  # NOTE: the one host read
            flags[i] = ok
    for ok, (_, make_error) in zip(flags, checks):
        error = None if (ok() if callable(ok) else ok) else make_error()
        if error is not None:
            return error
    return None


def collecting(fn):
    """``fn`` (a constructor or a scoring method) with the checks made during it, its nested
    calls included, read together when the outermost call ends. An exception raised in
    between (say, a Cholesky factorization of a matrix that is not positive definite)
    gives way to the error of a failed check made before it, as PyTorch's would have been
    raised first.

    NOTE: when the call may validate, NumPy's floating-point warnings are off during it: the
    work done before the checks are read may see the invalid values (log of a negative
    number...), and PyTorch's kernels never warn about inf or NaN either."""
    if getattr(fn, "_collecting", False):
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        if getattr(_local, "pending", None) is not None:
            return fn(*args, **kwargs)
        pending = _local.pending = []
        validating = getattr(args[0], "_validate_args", False) or kwargs.get("validate_args")
        try:
            if validating:
                with backend.quiet_float_errors():
                    out = fn(*args, **kwargs)
            else:
                out = fn(*args, **kwargs)
        except Exception:
            _local.pending = None
            error = first_failure(pending)
            if error is not None:
                raise error from None
            raise
        finally:
            _local.pending = None
        error = first_failure(pending) if pending else None
        if error is not None:
            raise error
        return out

    call._collecting = True
    return call

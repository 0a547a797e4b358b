"""``torch.backends.cudnn`` flags (read and set by scripts; manygrad chooses its own paths)."""

from __future__ import annotations

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True
benchmark_limit = 10


def is_available() -> bool:
    """True when CuPy sees a GPU and cuDNN's Python bindings can be imported."""
    from .. import backend

    if not backend.cuda_available():
        return False
    try:
        import cudnn  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> int | None:
    """cuDNN's version number, or None when cuDNN is not available."""
    if not is_available():
        return None
    import cudnn

    return int(cudnn.backend_version())


class flags:  # noqa: N801 - PyTorch's name
    """``with torch.backends.cudnn.flags(enabled=False): ...``: set the flags for a block."""

    def __init__(self, enabled=False, benchmark=False, deterministic=False, allow_tf32=True):
        self.new = dict(enabled=enabled, benchmark=benchmark, deterministic=deterministic,
                        allow_tf32=allow_tf32)  # fmt: skip

    def __enter__(self):
        g = globals()
        self.old = {k: g[k] for k in self.new}
        g.update(self.new)
        return self

    def __exit__(self, *exc):
        globals().update(self.old)
        return False

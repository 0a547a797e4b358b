"""``torch.backends.cuda`` flags: ``matmul.allow_tf32`` and the attention-kernel switches."""

from __future__ import annotations


class _Matmul:
    """``torch.backends.cuda.matmul``: TF32 / reduced-precision switches for GEMMs."""

    def __init__(self):
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True


matmul = _Matmul()
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    """True: manygrad's GPU path is part of every install (it needs CuPy at run time)."""
    return True


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = bool(enabled)


class sdp_kernel:  # noqa: N801 - PyTorch's (deprecated) name
    """Switch attention kernels inside a block (PyTorch's older form of
    ``nn.attention.sdpa_kernel``); the previous switches come back at its end."""

    def __init__(self, enable_flash: bool = True, enable_math: bool = True,
                 enable_mem_efficient: bool = True, enable_cudnn: bool = True):  # fmt: skip
        self._want = {"flash": enable_flash, "math": enable_math,
                      "mem_efficient": enable_mem_efficient, "cudnn": enable_cudnn}  # fmt: skip
        self._saved: dict = {}

    def __enter__(self):
        self._saved = dict(_sdp)
        _sdp.update({k: bool(v) for k, v in self._want.items()})
        return self

    def __exit__(self, *exc):
        _sdp.update(self._saved)
        return False

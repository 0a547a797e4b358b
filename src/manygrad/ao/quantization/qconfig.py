"""``QConfig`` (which observers watch a module's activations and weight), PyTorch's default
configs, and the stubs that mark where a model's quantized region starts and ends.

Example:
    >>> model.qconfig = default_qconfig
    >>> model = nn.Sequential(QuantStub(), nn.Linear(4, 4), DeQuantStub())
"""

from __future__ import annotations

from collections import namedtuple

from ... import dtypes as D
from ...nn import Module
from .fake_quantize import (
    FakeQuantize,
    default_embedding_fake_quant,
    default_embedding_fake_quant_4bit,
    default_fake_quant,
    default_per_channel_weight_fake_quant,
    default_weight_fake_quant,
)
from .observer import (
    HistogramObserver,
    MovingAverageMinMaxObserver,
    NoopObserver,
    PlaceholderObserver,
    default_dynamic_quant_observer,
    default_float_qparams_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_placeholder_observer,
    default_weight_observer,
)


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """Two factories (classes or ``with_args`` results, not instances): ``activation`` and
    ``weight`` observers (or fake quantizers, for QAT)."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError(
                "QConfig received an observer instance; pass the class or a factory, e.g. "
                "MinMaxObserver.with_args(dtype=torch.qint8)"
            )
        return super().__new__(cls, activation, weight)


default_qconfig = QConfig(activation=default_observer, weight=default_weight_observer)
default_dynamic_qconfig = QConfig(
    activation=default_dynamic_quant_observer, weight=default_weight_observer
)
per_channel_dynamic_qconfig = QConfig(
    activation=default_dynamic_quant_observer, weight=default_per_channel_weight_observer
)
default_per_channel_qconfig = QConfig(
    activation=default_observer, weight=default_per_channel_weight_observer
)
default_qat_qconfig = QConfig(activation=default_fake_quant, weight=default_weight_fake_quant)
float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=D.float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=D.float16),
)
float16_static_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=D.float16),
    weight=PlaceholderObserver.with_args(dtype=D.float16),
)
float_qparams_weight_only_qconfig = QConfig(
    activation=default_placeholder_observer, weight=default_float_qparams_observer
)

_BACKENDS = ("fbgemm", "x86", "qnnpack", "onednn")


def _check_backend(backend: str) -> None:
    if backend not in _BACKENDS:
        raise ValueError(f"backend {backend!r} is not supported; expected one of {_BACKENDS}")


def get_default_qconfig(backend: str = "x86", version: int = 0) -> QConfig:
    """PyTorch's post-training config for ``backend``: HistogramObserver activations
    (reduce_range for fbgemm/x86) and per-channel (fbgemm/x86/onednn) int8 weights."""
    _check_backend(backend)
    reduce = backend in ("fbgemm", "x86")
    weight = (
        default_weight_observer if backend == "qnnpack" else default_per_channel_weight_observer
    )
    return QConfig(activation=HistogramObserver.with_args(reduce_range=reduce), weight=weight)


def get_default_qat_qconfig(backend: str = "x86", version: int = 1) -> QConfig:
    """QAT config for ``backend``: moving-average fake quantization of activations (quint8,
    reduce_range for fbgemm/x86) and per-channel (fbgemm/x86/onednn) int8 weights; version
    1 (the default) with the fused fake quantizers, version 0 with ``FakeQuantize``."""
    from . import fake_quantize as fq

    _check_backend(backend)
    if version not in (0, 1, None):
        raise AssertionError(f"Version number: {version} in get_default_qat_qconfig is not "
                             "supported. Version number must be 0 or 1")  # fmt: skip
    cls = FakeQuantize if version == 0 else fq.FusedMovingAvgObsFakeQuantize
    kw = {} if backend == "onednn" else {"reduce_range": backend in ("fbgemm", "x86")}
    act = cls.with_args(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255, **kw)
    if version == 0:
        w = (
            default_weight_fake_quant
            if backend == "qnnpack"
            else default_per_channel_weight_fake_quant
        )
    else:
        w = (fq.default_fused_wt_fake_quant if backend == "qnnpack"
             else fq.default_fused_per_channel_wt_fake_quant)  # fmt: skip
    return QConfig(activation=act, weight=w)


def get_default_qconfig_dict(backend: str = "x86", version: int = 0) -> dict:
    return {"": get_default_qconfig(backend, version)}


class _Stub(Module):
    """A marker module: passes its input on; ``convert`` replaces it."""

    def __init__(self, qconfig=None):
        super().__init__()
        if qconfig is not None:
            self.qconfig = qconfig

    def forward(self, x):
        return x


class QuantStub(_Stub):
    """Marks where float tensors enter the quantized region; ``convert`` makes it a
    ``Quantize`` module with the qparams its observer chose."""


class DeQuantStub(_Stub):
    """Marks where tensors leave the quantized region; ``convert`` makes it ``DeQuantize``."""


class QuantWrapper(Module):
    """``module`` between a QuantStub and a DeQuantStub (its qconfig carries over)."""

    def __init__(self, module: Module):
        super().__init__()
        qconfig = getattr(module, "qconfig", None)
        self.add_module("quant", QuantStub(qconfig))
        self.add_module("dequant", DeQuantStub(qconfig))
        self.add_module("module", module)
        self.train(module.training)

    def forward(self, x):
        return self.dequant(self.module(self.quant(x)))


# NOTE: QAT of embeddings: float activations, float-qparams fake-quantized weights
default_embedding_qat_qconfig = QConfig(activation=NoopObserver.with_args(dtype=D.float32),
                                        weight=default_embedding_fake_quant)  # fmt: skip
default_embedding_qat_qconfig_4bit = QConfig(activation=NoopObserver.with_args(dtype=D.float32),
                                             weight=default_embedding_fake_quant_4bit)  # fmt: skip

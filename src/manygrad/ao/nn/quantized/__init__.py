"""``torch.ao.nn.quantized`` (also ``torch.nn.quantized``): statically quantized modules."""

from . import dynamic, functional  # noqa: F401
from .activation import (
    ELU,
    BatchNorm2d,
    BatchNorm3d,
    Dropout,
    Hardswish,
    LeakyReLU,
    PReLU,
    ReLU6,
    Sigmoid,
)
from .conv import Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .embedding import Embedding, EmbeddingBag
from .functional_modules import FloatFunctional, FXFloatFunctional, QFunctional
from .modules import Conv1d, Conv2d, DeQuantize, Linear, Quantize
from .normalization import GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm

__all__ = ["BatchNorm2d", "BatchNorm3d", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d",
           "ConvTranspose2d", "ConvTranspose3d", "PReLU",
           "DeQuantize", "Dropout", "ELU", "Embedding",
           "EmbeddingBag", "FXFloatFunctional", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm",
           "FloatFunctional", "Hardswish", "LeakyReLU", "Linear", "QFunctional", "Quantize",
           "ReLU6", "Sigmoid", "dynamic", "functional"]  # fmt: skip

"""``torch.ao.nn.quantized`` (also ``torch.nn.quantized``): statically quantized modules."""

from ....nn import MaxPool2d  # noqa: E402  (PyTorch's quantized MaxPool2d is the float one)
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
    Softmax,
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
           "MaxPool2d", "ReLU6", "Sigmoid", "Softmax", "dynamic", "functional"]  # fmt: skip

"""Neural-network building blocks: ``Module``, layers, ``functional``, ``init``."""

from . import (  # noqa: F401
    functional,  # noqa: F401
    grad,
    init,
    utils,
)
from .activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .attention import (
    MultiheadAttention,
    NonDynamicallyQuantizableLinear,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from .containers import Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module, RemovableHandle, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from .parameter import Buffer, Parameter
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from .sparse import Embedding

__all__ = [
    "functional", "init", "utils",
    "Module", "Parameter", "Buffer", "RemovableHandle", "StateDictError",
    "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Container",
    "Linear", "Identity", "Flatten", "Unflatten",
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d",
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm",
    "Dropout", "Embedding",
    "MultiheadAttention", "NonDynamicallyQuantizableLinear", "TransformerEncoderLayer",
    "TransformerEncoder",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "Softplus", "Softmax",
    "LogSoftmax",
    "CrossEntropyLoss", "MSELoss", "L1Loss", "NLLLoss", "BCEWithLogitsLoss", "BCELoss",
    "SmoothL1Loss", "HuberLoss", "KLDivLoss",
]  # fmt: skip
from . import parallel  # noqa: F401, E402

# layer families added beside the first set (PyTorch's names)
from .activation import (  # noqa: E402
    CELU,
    GLU,
    SELU,
    Hardshrink,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LogSigmoid,
    Mish,
    PReLU,
    ReLU6,
    Softmin,
    Softshrink,
    Softsign,
    Tanhshrink,
    Threshold,
)

__all__ += [
    "CELU", "GLU", "SELU", "Hardshrink", "Hardsigmoid", "Hardswish", "Hardtanh", "LogSigmoid",
    "Mish", "PReLU", "ReLU6", "Softmin", "Softshrink", "Softsign", "Tanhshrink", "Threshold",
]  # fmt: skip
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase  # noqa: E402

__all__ += ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]
from .distance import CosineSimilarity, PairwiseDistance  # noqa: E402
from .loss import (  # noqa: E402
    CosineEmbeddingLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    MarginRankingLoss,
    MultiLabelSoftMarginLoss,
    MultiMarginLoss,
    PoissonNLLLoss,
    SoftMarginLoss,
    TripletMarginLoss,
)

__all__ += [
    "CosineSimilarity", "PairwiseDistance", "CosineEmbeddingLoss", "GaussianNLLLoss",
    "HingeEmbeddingLoss", "MarginRankingLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss",
    "PoissonNLLLoss", "SoftMarginLoss", "TripletMarginLoss",
]  # fmt: skip
from .padding import (  # noqa: E402
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)
from .upsampling import (  # noqa: E402
    Fold,
    PixelShuffle,
    PixelUnshuffle,
    Unfold,
    Upsample,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
)

__all__ += [
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
    "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "Fold", "PixelShuffle", "PixelUnshuffle", "Unfold", "Upsample", "UpsamplingBilinear2d",
    "UpsamplingNearest2d",
]  # fmt: skip
from .conv3d import Conv3d, ConvTranspose3d  # noqa: E402
from .instancenorm import (  # noqa: E402
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LocalResponseNorm,
)
from .normalization import BatchNorm3d  # noqa: E402
from .pooling import AdaptiveAvgPool3d, AvgPool3d, MaxPool3d  # noqa: E402

__all__ += [
    "Conv3d", "ConvTranspose3d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "LocalResponseNorm", "AdaptiveAvgPool3d", "AvgPool3d", "MaxPool3d",
]  # fmt: skip
from .transformer import Transformer, TransformerDecoder, TransformerDecoderLayer  # noqa: E402

__all__ += ["Transformer", "TransformerDecoder", "TransformerDecoderLayer"]
from .bilinear import Bilinear  # noqa: E402
from .embedding_bag import EmbeddingBag  # noqa: E402
from .feature_dropout import (  # noqa: E402
    AlphaDropout,
    Dropout1d,
    Dropout2d,
    Dropout3d,
    FeatureAlphaDropout,
)

__all__ += [
    "Bilinear", "EmbeddingBag", "AlphaDropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "FeatureAlphaDropout",
]  # fmt: skip
from .loss import CTCLoss  # noqa: E402

__all__ += ["CTCLoss"]
from .activation import RReLU, Softmax2d  # noqa: E402
from .pooling import AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d  # noqa: E402
from .upsampling import ChannelShuffle  # noqa: E402

__all__ += ["RReLU", "Softmax2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
            "ChannelShuffle"]  # fmt: skip
from .loss import MultiLabelMarginLoss, TripletMarginWithDistanceLoss  # noqa: E402

__all__ += ["MultiLabelMarginLoss", "TripletMarginWithDistanceLoss"]
from .pooling import LPPool1d, LPPool2d, LPPool3d  # noqa: E402

__all__ += ["LPPool1d", "LPPool2d", "LPPool3d"]
from .loss import NLLLoss2d  # noqa: E402
from .pooling import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d  # noqa: E402

__all__ += ["NLLLoss2d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]
from .lazy import (  # noqa: E402
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
    LazyLinear,
)

__all__ += [
    "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d", "LazyConv1d", "LazyConv2d",
    "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d",
    "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d", "LazyLinear",
]  # fmt: skip
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: E402

__all__ += ["UninitializedBuffer", "UninitializedParameter"]


from .syncbn import DataParallel, SyncBatchNorm  # noqa: E402

__all__ += ["DataParallel", "SyncBatchNorm"]


def __getattr__(name: str):
    # NOTE: PyTorch's module tree (torch.nn.modules, torch.nn.parallel) loads on first use
    if name in ("modules", "parallel"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'manygrad.nn' has no attribute {name!r}")


from .adaptive import AdaptiveLogSoftmaxWithLoss  # noqa: E402

__all__ += ["AdaptiveLogSoftmaxWithLoss"]
from .instancenorm import CrossMapLRN2d  # noqa: E402

__all__ += ["CrossMapLRN2d"]
from .fractional import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: E402

__all__ += ["FractionalMaxPool2d", "FractionalMaxPool3d"]
from .linear_cross_entropy import LinearCrossEntropyLoss, LinearCrossEntropyOptions  # noqa: E402

__all__ += ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]

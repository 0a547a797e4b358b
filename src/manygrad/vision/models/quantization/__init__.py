"""torchvision's quantizable models (``torchvision.models.quantization``) on manygrad's
``ao`` quantization: ResNet-18/50, ResNeXt-101, MobileNet V2 / V3-Large, GoogLeNet,
Inception v3 and ShuffleNet V2, with QuantStub / DeQuantStub, ``fuse_model()``, residual
adds and concatenations in ``FloatFunctional``s, and the builders' ``quantize=True`` (the
int8 model, torchvision's post-training recipe) with the quantized weights enums.

Example:
    >>> from manygrad.vision.models import quantization
    >>> qmodel = quantization.resnet18(weights="DEFAULT", quantize=True)
    >>> qmodel(images).argmax(1)  # int8 convolutions, float logits
"""

from . import googlenet as _googlenet
from . import inception as _inception
from . import mobilenet as _mobilenet
from . import resnet as _resnet
from . import shufflenetv2 as _shufflenetv2
from .googlenet import *  # noqa: F403
from .inception import *  # noqa: F403
from .mobilenet import *  # noqa: F403
from .resnet import *  # noqa: F403
from .shufflenetv2 import *  # noqa: F403

__all__ = [
    *_googlenet.__all__,
    *_inception.__all__,
    *_mobilenet.__all__,
    *_resnet.__all__,
    *_shufflenetv2.__all__,
]

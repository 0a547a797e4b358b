"""torchvision's datasets on manygrad (``torchvision.datasets``): MNIST and its family,
CIFAR-10/100, SVHN, image folders and FakeData, read from local files in torchvision's
layouts (``download=True`` fetches them from torchvision's mirrors when missing)."""

from .celeba import CelebA
from .cifar import CIFAR10, CIFAR100
from .fakedata import FakeData
from .folder import DatasetFolder, ImageFolder
from .imagenet import ImageNet
from .mnist import EMNIST, KMNIST, MNIST, QMNIST, FashionMNIST
from .stl10 import STL10
from .svhn import SVHN
from .usps import USPS
from .vision import VisionDataset
from .voc import VOCDetection, VOCSegmentation

__all__ = ["CIFAR10", "CIFAR100", "EMNIST", "KMNIST", "MNIST", "QMNIST", "STL10", "SVHN",
           "USPS", "CelebA", "DatasetFolder", "FakeData", "FashionMNIST", "ImageFolder",
           "ImageNet", "VOCDetection", "VOCSegmentation", "VisionDataset"]  # fmt: skip

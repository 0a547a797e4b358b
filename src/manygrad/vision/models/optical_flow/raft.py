"""RAFT (Teed & Deng, "RAFT: Recurrent All-Pairs Field Transforms for Optical Flow", 2020),
as torchvision builds it: feature and context encoders at 1/8 of the image size, a
pyramid of all-pairs correlations looked up around the current estimate, a convolutional
GRU that refines the flow step by step, and upsampling by a learned convex mask."""

# ruff: noqa: N801 (torchvision's class names: Raft_Large_Weights, ...)
from __future__ import annotations

import math

import numpy as np

import manygrad as mg

from .... import nn
from ....nn import functional as F
from ...ops.misc import Conv2dNormActivation
from .._api import Weights, WeightsEnum, _build, handle_legacy_interface, register_model
from ._presets import OpticalFlow
from ._utils import grid_sample, make_coords_grid, upsample_flow

__all__ = ("RAFT", "raft_large", "raft_small", "Raft_Large_Weights", "Raft_Small_Weights")


class ResidualBlock(nn.Module):
    """Two 3x3 conv-norm-ReLUs and a shortcut (projected when strided or asked to), then a
    ReLU. The convolutions keep their biases before the norms: RAFT's training freezes its
    batch norms after the first dataset."""

    def __init__(
        self, in_channels, out_channels, *, norm_layer, stride=1, always_project: bool = False
    ):
        super().__init__()
        self.convnormrelu1 = Conv2dNormActivation(
            in_channels, out_channels, norm_layer=norm_layer, kernel_size=3, stride=stride,
            bias=True,
        )  # fmt: skip
        self.convnormrelu2 = Conv2dNormActivation(
            out_channels, out_channels, norm_layer=norm_layer, kernel_size=3, bias=True
        )
        self.downsample: nn.Module
        if stride == 1 and not always_project:
            self.downsample = nn.Identity()
        else:
            self.downsample = Conv2dNormActivation(
                in_channels, out_channels, norm_layer=norm_layer, kernel_size=1, stride=stride,
                bias=True, activation_layer=None,
            )  # fmt: skip
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.convnormrelu2(self.convnormrelu1(x))
        return self.relu(self.downsample(x) + y)


class BottleneckBlock(nn.Module):
    """1x1 to a quarter of the width, 3x3 (strided), 1x1 back, each with norm and ReLU,
    and a shortcut (projected when strided), then a ReLU."""

    def __init__(self, in_channels, out_channels, *, norm_layer, stride=1):
        super().__init__()
        mid = out_channels // 4
        self.convnormrelu1 = Conv2dNormActivation(in_channels, mid, norm_layer=norm_layer,
                                                  kernel_size=1, bias=True)  # fmt: skip
        self.convnormrelu2 = Conv2dNormActivation(mid, mid, norm_layer=norm_layer, kernel_size=3,
                                                  stride=stride, bias=True)  # fmt: skip
        self.convnormrelu3 = Conv2dNormActivation(mid, out_channels, norm_layer=norm_layer,
                                                  kernel_size=1, bias=True)  # fmt: skip
        self.relu = nn.ReLU(inplace=True)
        if stride == 1:
            self.downsample = nn.Identity()
        else:
            self.downsample = Conv2dNormActivation(
                in_channels, out_channels, norm_layer=norm_layer, kernel_size=1, stride=stride,
                bias=True, activation_layer=None,
            )  # fmt: skip

    def forward(self, x):
        y = self.convnormrelu3(self.convnormrelu2(self.convnormrelu1(x)))
        return self.relu(self.downsample(x) + y)


class FeatureEncoder(nn.Module):
    """The feature (and context) encoder: a 7x7 conv-norm-ReLU, three stages of two blocks
    and a 1x1 convolution; the strides must bring the image down by 8.

    Args:
        block: ``ResidualBlock`` (default) or ``BottleneckBlock``.
        layers: the widths of the stem, the three stages and the output (5 ints).
        strides: of the stem and the three stages (default (2, 1, 2, 2)).
        norm_layer: default ``nn.BatchNorm2d`` (``nn.InstanceNorm2d``, or None).
    """

    def __init__(self, *, block=ResidualBlock, layers=(64, 64, 96, 128, 256), strides=(2, 1, 2, 2),
                 norm_layer=nn.BatchNorm2d):  # fmt: skip
        super().__init__()
        if len(layers) != 5:
            raise ValueError(f"The expected number of layers is 5, instead got {len(layers)}")
        self.convnormrelu = Conv2dNormActivation(
            3, layers[0], norm_layer=norm_layer, kernel_size=7, stride=strides[0], bias=True
        )
        self.layer1 = self._make_2_blocks(block, layers[0], layers[1], norm_layer=norm_layer,
                                          first_stride=strides[1])  # fmt: skip
        self.layer2 = self._make_2_blocks(block, layers[1], layers[2], norm_layer=norm_layer,
                                          first_stride=strides[2])  # fmt: skip
        self.layer3 = self._make_2_blocks(block, layers[2], layers[3], norm_layer=norm_layer,
                                          first_stride=strides[3])  # fmt: skip
        self.conv = nn.Conv2d(layers[3], layers[4], kernel_size=1)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                if m.weight is not None:
                    nn.init.constant_(m.weight, 1)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
        self.output_dim = layers[-1]
        self.downsample_factor = 2 ** sum(1 for s in strides if s == 2)

    def _make_2_blocks(self, block, in_channels, out_channels, norm_layer, first_stride):
        return nn.Sequential(
            block(in_channels, out_channels, norm_layer=norm_layer, stride=first_stride),
            block(out_channels, out_channels, norm_layer=norm_layer, stride=1),
        )

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.convnormrelu(x))))
        return self.conv(x)


class MotionEncoder(nn.Module):
    """Encode the current flow and its correlation features (part of the update block);
    the flow itself rides along in the last 2 of ``out_channels``."""

    def __init__(
        self, *, in_channels_corr, corr_layers=(256, 192), flow_layers=(128, 64), out_channels=128
    ):
        super().__init__()
        if len(flow_layers) != 2:
            raise ValueError(
                f"The expected number of flow_layers is 2, instead got {len(flow_layers)}"
            )
        if len(corr_layers) not in (1, 2):
            raise ValueError(
                f"The number of corr_layers should be 1 or 2, instead got {len(corr_layers)}"
            )
        self.convcorr1 = Conv2dNormActivation(in_channels_corr, corr_layers[0], norm_layer=None,
                                              kernel_size=1)  # fmt: skip
        if len(corr_layers) == 2:
            self.convcorr2 = Conv2dNormActivation(corr_layers[0], corr_layers[1], norm_layer=None,
                                                  kernel_size=3)  # fmt: skip
        else:
            self.convcorr2 = nn.Identity()
        self.convflow1 = Conv2dNormActivation(2, flow_layers[0], norm_layer=None, kernel_size=7)
        self.convflow2 = Conv2dNormActivation(flow_layers[0], flow_layers[1], norm_layer=None,
                                              kernel_size=3)  # fmt: skip
        self.conv = Conv2dNormActivation(corr_layers[-1] + flow_layers[-1], out_channels - 2,
                                         norm_layer=None, kernel_size=3)  # fmt: skip
        self.out_channels = out_channels

    def forward(self, flow, corr_features):
        corr = self.convcorr2(self.convcorr1(corr_features))
        flow_features = self.convflow2(self.convflow1(flow))
        corr_flow = self.conv(mg.cat([corr, flow_features], dim=1))
        return mg.cat([corr_flow, flow], dim=1)


class ConvGRU(nn.Module):
    """A GRU cell whose gates are convolutions over the hidden state and the input."""

    def __init__(self, *, input_size, hidden_size, kernel_size, padding):
        super().__init__()
        channels = hidden_size + input_size
        self.convz = nn.Conv2d(channels, hidden_size, kernel_size=kernel_size, padding=padding)
        self.convr = nn.Conv2d(channels, hidden_size, kernel_size=kernel_size, padding=padding)
        self.convq = nn.Conv2d(channels, hidden_size, kernel_size=kernel_size, padding=padding)

    def forward(self, h, x):
        hx = mg.cat([h, x], dim=1)
        z = mg.sigmoid(self.convz(hx))
        r = mg.sigmoid(self.convr(hx))
        q = mg.tanh(self.convq(mg.cat([r * h, x], dim=1)))
        return (1 - z) * h + z * q


def _pass_through_h(h, _):
    return h


class RecurrentBlock(nn.Module):
    """One or two ConvGRUs in a row (RAFT large: a 1x5 then a 5x1 one) updating the hidden
    state from the motion features and the context."""

    def __init__(
        self, *, input_size, hidden_size, kernel_size=((1, 5), (5, 1)), padding=((0, 2), (2, 0))
    ):
        super().__init__()
        if len(kernel_size) != len(padding):
            raise ValueError(
                "kernel_size should have the same length as padding, instead got "
                f"len(kernel_size) = {len(kernel_size)} and len(padding) = {len(padding)}"
            )
        if len(kernel_size) not in (1, 2):
            raise ValueError(f"kernel_size should either 1 or 2, instead got {len(kernel_size)}")
        self.convgru1 = ConvGRU(input_size=input_size, hidden_size=hidden_size,
                                kernel_size=kernel_size[0], padding=padding[0])  # fmt: skip
        if len(kernel_size) == 2:
            self.convgru2 = ConvGRU(input_size=input_size, hidden_size=hidden_size,
                                    kernel_size=kernel_size[1], padding=padding[1])  # fmt: skip
        else:
            self.convgru2 = _pass_through_h
        self.hidden_size = hidden_size

    def forward(self, h, x):
        return self.convgru2(self.convgru1(h, x), x)


class FlowHead(nn.Module):
    """Two 3x3 convolutions from the hidden state to the flow's update ("delta flow")."""

    def __init__(self, *, in_channels, hidden_size):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, hidden_size, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden_size, 2, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x)))


class UpdateBlock(nn.Module):
    """Motion encoder, recurrent block and flow head: (hidden state, context, correlation
    features, flow) -> (hidden state, delta flow). ``hidden_state_size`` is the recurrent
    block's."""

    def __init__(self, *, motion_encoder, recurrent_block, flow_head):
        super().__init__()
        self.motion_encoder = motion_encoder
        self.recurrent_block = recurrent_block
        self.flow_head = flow_head
        self.hidden_state_size = recurrent_block.hidden_size

    def forward(self, hidden_state, context, corr_features, flow):
        motion_features = self.motion_encoder(flow, corr_features)
        x = mg.cat([context, motion_features], dim=1)
        hidden_state = self.recurrent_block(hidden_state, x)
        return hidden_state, self.flow_head(hidden_state)


class MaskPredictor(nn.Module):
    """The upsampling mask from the hidden state: 8 x 8 x 9 weights per coarse pixel,
    scaled by ``multiplier`` (0.25, RAFT's damping of this branch's gradients)."""

    def __init__(self, *, in_channels, hidden_size, multiplier=0.25):
        super().__init__()
        self.convrelu = Conv2dNormActivation(in_channels, hidden_size, norm_layer=None,
                                             kernel_size=3)  # fmt: skip
        self.conv = nn.Conv2d(hidden_size, 8 * 8 * 9, 1, padding=0)
        self.multiplier = multiplier

    def forward(self, x):
        return self.multiplier * self.conv(self.convrelu(x))


class CorrBlock(nn.Module):
    """The correlation pyramid and its lookup.

    ``build_pyramid`` takes the dot products of every pair of feature vectors of the two
    images and average-pools the second image's side ``num_levels - 1`` times;
    ``index_pyramid`` samples, at each level, the ``(2 * radius + 1)**2`` square of
    correlations around each pixel's current match (the infinity-norm neighbourhood).
    """

    def __init__(self, *, num_levels: int = 4, radius: int = 4):
        super().__init__()
        self.num_levels = num_levels
        self.radius = radius
        self.corr_pyramid: list = [mg.tensor(0)]
        self.out_channels = num_levels * (2 * radius + 1) ** 2

    def build_pyramid(self, fmap1, fmap2):
        """The pyramid of (N * h * w, 1, h / 2**i, w / 2**i) correlation volumes."""
        if fmap1.shape != fmap2.shape:
            raise ValueError(
                "Input feature maps should have the same shape, instead got "
                f"{tuple(fmap1.shape)} (fmap1.shape) != {tuple(fmap2.shape)} (fmap2.shape)"
            )
        # the last level must keep at least 2 values a side (grid_sample gives NaNs below)
        min_fmap_size = 2 * (2 ** (self.num_levels - 1))
        if any(s < min_fmap_size for s in fmap1.shape[-2:]):
            raise ValueError(
                "Feature maps are too small to be down-sampled by the correlation pyramid. "
                f"H and W of feature maps should be at least {min_fmap_size}; got: "
                f"{tuple(fmap1.shape[-2:])}. Remember that input images to the model are "
                "downsampled by 8, so that means their dimensions should be at least 8 * "
                f"{min_fmap_size} = {8 * min_fmap_size}."
            )
        corr_volume = self._compute_corr_volume(fmap1, fmap2)
        batch_size, h, w, num_channels, _, _ = corr_volume.shape
        corr_volume = corr_volume.reshape(batch_size * h * w, num_channels, h, w)
        self.corr_pyramid = [corr_volume]
        for _ in range(self.num_levels - 1):
            corr_volume = F.avg_pool2d(corr_volume, kernel_size=2, stride=2)
            self.corr_pyramid.append(corr_volume)

    def index_pyramid(self, centroids_coords):
        """(N, out_channels, h, w) correlation features around ``centroids_coords`` (N, 2,
        h, w), the (x, y) of each pixel's match in the second image."""
        side = 2 * self.radius + 1
        device = centroids_coords.device
        di = mg.linspace(-self.radius, self.radius, side, device=device)
        # NOTE: the offsets' first axis moves x (grid_sample's first coordinate), as
        # torchvision's ordering, which the checkpoints' convcorr1 expects
        delta = mg.stack(mg.meshgrid(di, di, indexing="ij"), dim=-1).view(1, side, side, 2)
        batch_size, _, h, w = centroids_coords.shape
        centroids = centroids_coords.permute(0, 2, 3, 1).reshape(batch_size * h * w, 1, 1, 2)
        indexed = []
        for corr_volume in self.corr_pyramid:
            sampled = grid_sample(corr_volume, centroids + delta.to(centroids.dtype),
                                  align_corners=True, mode="bilinear")  # fmt: skip
            indexed.append(sampled.view(batch_size, h, w, -1))
            centroids = centroids / 2
        corr_features = mg.cat(indexed, dim=-1).permute(0, 3, 1, 2).contiguous()
        expected = (batch_size, self.out_channels, h, w)
        if tuple(corr_features.shape) != expected:
            raise ValueError(
                f"Output shape of index pyramid is incorrect. Should be {expected}, got "
                f"{tuple(corr_features.shape)}"
            )
        return corr_features

    def _compute_corr_volume(self, fmap1, fmap2):
        batch_size, num_channels, h, w = fmap1.shape
        fmap1 = fmap1.view(batch_size, num_channels, h * w)
        fmap2 = fmap2.view(batch_size, num_channels, h * w)
        corr = mg.matmul(fmap1.transpose(1, 2), fmap2).view(batch_size, h, w, 1, h, w)
        # NOTE: the scale as torchvision computes it, a float32 square root (also for
        # float64 features): the same quotients to the last bit
        return corr / float(np.float32(math.sqrt(num_channels)))


class RAFT(nn.Module):
    """RAFT: the flow from ``image1`` to ``image2``, refined ``num_flow_updates`` times.

    Args:
        feature_encoder: features of both images at 1/8 of their size.
        context_encoder: of ``image1``: split into the GRU's initial hidden state (tanh)
            and the context (ReLU); it needs more channels than the hidden state.
        corr_block: with ``build_pyramid(fmap1, fmap2)``, ``index_pyramid(coords)`` and
            ``out_channels``.
        update_block: (hidden, context, corr features, flow) -> (hidden, delta flow), with
            ``hidden_state_size``.
        mask_predictor: the learned upsampling mask (default None: bilinear upsampling).

    ``forward(image1, image2, num_flow_updates=12)`` returns the list of the flow
    estimates, each ``(N, 2, H, W)``.

    Example:
        >>> model = raft_small()
        >>> flows = model(img1, img2, num_flow_updates=6)  # H, W multiples of 8, >= 128
    """

    def __init__(
        self, *, feature_encoder, context_encoder, corr_block, update_block, mask_predictor=None
    ):
        super().__init__()
        self.feature_encoder = feature_encoder
        self.context_encoder = context_encoder
        self.corr_block = corr_block
        self.update_block = update_block
        self.mask_predictor = mask_predictor
        if not hasattr(self.update_block, "hidden_state_size"):
            raise ValueError(
                "The update_block parameter should expose a 'hidden_state_size' attribute."
            )

    def forward(self, image1, image2, num_flow_updates: int = 12):
        batch_size, _, h, w = image1.shape
        if (h, w) != tuple(image2.shape[-2:]):
            raise ValueError(
                f"input images should have the same shape, instead got ({h}, {w}) != "
                f"{tuple(image2.shape[-2:])}"
            )
        if h % 8 != 0 or w % 8 != 0:
            raise ValueError(
                f"input image H and W should be divisible by 8, instead got {h} (h) and {w} (w)"
            )
        fmaps = self.feature_encoder(mg.cat([image1, image2], dim=0))
        fmap1, fmap2 = mg.chunk(fmaps, chunks=2, dim=0)
        if tuple(fmap1.shape[-2:]) != (h // 8, w // 8):
            raise ValueError("The feature encoder should downsample H and W by 8")
        self.corr_block.build_pyramid(fmap1, fmap2)

        context_out = self.context_encoder(image1)
        if tuple(context_out.shape[-2:]) != (h // 8, w // 8):
            raise ValueError("The context encoder should downsample H and W by 8")
        hidden_state_size = self.update_block.hidden_state_size
        out_channels_context = context_out.shape[1] - hidden_state_size
        if out_channels_context <= 0:
            raise ValueError(
                f"The context encoder outputs {context_out.shape[1]} channels, but it should "
                f"have at strictly more than hidden_state={hidden_state_size} channels"
            )
        hidden_state, context = mg.split(context_out, [hidden_state_size, out_channels_context],
                                         dim=1)  # fmt: skip
        hidden_state = mg.tanh(hidden_state)
        context = F.relu(context)

        coords0 = make_coords_grid(batch_size, h // 8, w // 8, device=fmap1.device)
        coords1 = make_coords_grid(batch_size, h // 8, w // 8, device=fmap1.device)
        coords0, coords1 = coords0.to(fmap1.dtype), coords1.to(fmap1.dtype)
        flow_predictions = []
        for _ in range(num_flow_updates):
            coords1 = coords1.detach()  # no gradient through the lookups (RAFT, section 3.3)
            corr_features = self.corr_block.index_pyramid(centroids_coords=coords1)
            flow = coords1 - coords0
            hidden_state, delta_flow = self.update_block(hidden_state, context, corr_features,
                                                         flow)  # fmt: skip
            coords1 = coords1 + delta_flow
            up_mask = None if self.mask_predictor is None else self.mask_predictor(hidden_state)
            flow_predictions.append(upsample_flow(flow=coords1 - coords0, up_mask=up_mask))
        return flow_predictions


def _raft(
    *,
    weights=None,
    progress=False,
    # feature encoder
    feature_encoder_layers,
    feature_encoder_block,
    feature_encoder_norm_layer,
    # context encoder
    context_encoder_layers,
    context_encoder_block,
    context_encoder_norm_layer,
    # correlation block
    corr_block_num_levels,
    corr_block_radius,
    # motion encoder
    motion_encoder_corr_layers,
    motion_encoder_flow_layers,
    motion_encoder_out_channels,
    # recurrent block
    recurrent_block_hidden_state_size,
    recurrent_block_kernel_size,
    recurrent_block_padding,
    # flow head
    flow_head_hidden_size,
    # mask predictor
    use_mask_predictor,
    **kwargs,
):
    def make():
        feature_encoder = kwargs.get("feature_encoder") or FeatureEncoder(
            block=feature_encoder_block, layers=feature_encoder_layers,
            norm_layer=feature_encoder_norm_layer,
        )  # fmt: skip
        context_encoder = kwargs.get("context_encoder") or FeatureEncoder(
            block=context_encoder_block, layers=context_encoder_layers,
            norm_layer=context_encoder_norm_layer,
        )  # fmt: skip
        corr_block = kwargs.get("corr_block") or CorrBlock(
            num_levels=corr_block_num_levels, radius=corr_block_radius
        )
        update_block = kwargs.get("update_block")
        if update_block is None:
            motion_encoder = MotionEncoder(
                in_channels_corr=corr_block.out_channels, corr_layers=motion_encoder_corr_layers,
                flow_layers=motion_encoder_flow_layers, out_channels=motion_encoder_out_channels,
            )  # fmt: skip
            # the context encoder's output less the hidden state's share (see RAFT.forward)
            out_channels_context = context_encoder_layers[-1] - recurrent_block_hidden_state_size
            recurrent_block = RecurrentBlock(
                input_size=motion_encoder.out_channels + out_channels_context,
                hidden_size=recurrent_block_hidden_state_size,
                kernel_size=recurrent_block_kernel_size, padding=recurrent_block_padding,
            )  # fmt: skip
            flow_head = FlowHead(in_channels=recurrent_block_hidden_state_size,
                                 hidden_size=flow_head_hidden_size)  # fmt: skip
            update_block = UpdateBlock(
                motion_encoder=motion_encoder, recurrent_block=recurrent_block, flow_head=flow_head
            )
        mask_predictor = kwargs.get("mask_predictor")
        if mask_predictor is None and use_mask_predictor:
            mask_predictor = MaskPredictor(in_channels=recurrent_block_hidden_state_size,
                                           hidden_size=256, multiplier=0.25)  # fmt: skip
        rest = {k: v for k, v in kwargs.items() if k not in _PARTS}
        return RAFT(feature_encoder=feature_encoder, context_encoder=context_encoder,
                    corr_block=corr_block, update_block=update_block,
                    mask_predictor=mask_predictor, **rest)  # fmt: skip

    # NOTE: with weights and without modules passed in, the model is built on the meta
    # device and filled by the checkpoint (the given modules keep their device)
    if weights is not None and any(kwargs.get(k) is not None for k in _PARTS):
        model = make()
        model.load_state_dict(weights.get_state_dict(progress=progress, check_hash=True))
        return model
    return _build(make, weights, progress)


_PARTS = ("feature_encoder", "context_encoder", "corr_block", "update_block", "mask_predictor")
_COMMON_META = {"min_size": (128, 128)}
_URL = "https://download.pytorch.org/models/"
_PORTED = "https://github.com/princeton-vl/RAFT"
_TRAINED = "https://github.com/pytorch/vision/tree/main/references/optical_flow"
_CHAIRS_THINGS = "FlyingChairs + FlyingThings3D"
_SINTEL_MIX = "Sintel, KittiFlow, HD1K and FlyingThings3D (clean pass)"


def _flow_weights(url: str, num_params: int, recipe: str, metrics: dict, ops: float,
                  size: float, docs: str) -> Weights:  # fmt: skip
    meta = {**_COMMON_META, "num_params": num_params, "recipe": recipe, "_metrics": metrics,
            "_ops": ops, "_file_size": size, "_docs": docs}  # fmt: skip
    return Weights(url=_URL + url, transforms=OpticalFlow, meta=meta)


def _large(url, recipe, metrics, docs):
    return _flow_weights(url, 5257536, recipe, metrics, 211.007, 20.129, docs)


def _small(url, recipe, metrics, docs):
    return _flow_weights(url, 990162, recipe, metrics, 47.655, 3.821, docs)


class Raft_Large_Weights(WeightsEnum):
    """RAFT large's checkpoints. ``epe`` is the end-point error (pixels between the
    predicted and the true flow, averaged over all pixels); ``per_image_epe`` averages
    per image first (KITTI's "Fl-epe"); ``fl_all`` is KITTI's share of pixels whose error
    exceeds 3 px and 5% of the flow's length."""

    C_T_V1 = _large(
        "raft_large_C_T_V1-22a6c225.pth", _PORTED,
        {"Sintel-Train-Cleanpass": {"epe": 1.4411}, "Sintel-Train-Finalpass": {"epe": 2.7894},
         "Kitti-Train": {"per_image_epe": 5.0172, "fl_all": 17.4506}},
        f"Ported from the paper's code; trained on {_CHAIRS_THINGS}.",
    )  # fmt: skip
    C_T_V2 = _large(
        "raft_large_C_T_V2-1bb1363a.pth", _TRAINED,
        {"Sintel-Train-Cleanpass": {"epe": 1.3822}, "Sintel-Train-Finalpass": {"epe": 2.7161},
         "Kitti-Train": {"per_image_epe": 4.5118, "fl_all": 16.0679}},
        f"Trained from scratch on {_CHAIRS_THINGS}.",
    )  # fmt: skip
    C_T_SKHT_V1 = _large(
        "raft_large_C_T_SKHT_V1-0b8c9e55.pth", _PORTED,
        {"Sintel-Test-Cleanpass": {"epe": 1.94}, "Sintel-Test-Finalpass": {"epe": 3.18}},
        f"Ported from the paper's code; trained on {_CHAIRS_THINGS}, fine-tuned on "
        f"{_SINTEL_MIX}.",
    )  # fmt: skip
    C_T_SKHT_V2 = _large(
        "raft_large_C_T_SKHT_V2-ff5fadd5.pth", _TRAINED,
        {"Sintel-Test-Cleanpass": {"epe": 1.819}, "Sintel-Test-Finalpass": {"epe": 3.067}},
        f"Trained from scratch on {_CHAIRS_THINGS}, fine-tuned on {_SINTEL_MIX}.",
    )  # fmt: skip
    C_T_SKHT_K_V1 = _large(
        "raft_large_C_T_SKHT_K_V1-4a6a5039.pth", _PORTED, {"Kitti-Test": {"fl_all": 5.10}},
        f"Ported from the paper's code; trained on {_CHAIRS_THINGS}, fine-tuned on "
        f"{_SINTEL_MIX}, then on KittiFlow.",
    )  # fmt: skip
    C_T_SKHT_K_V2 = _large(
        "raft_large_C_T_SKHT_K_V2-b5c70766.pth", _TRAINED, {"Kitti-Test": {"fl_all": 5.19}},
        f"Trained from scratch on {_CHAIRS_THINGS}, fine-tuned on {_SINTEL_MIX}, then on "
        "KittiFlow.",
    )  # fmt: skip
    DEFAULT = C_T_SKHT_V2


class Raft_Small_Weights(WeightsEnum):
    """RAFT small's checkpoints (metrics as ``Raft_Large_Weights``')."""

    C_T_V1 = _small(
        "raft_small_C_T_V1-ad48884c.pth", _PORTED,
        {"Sintel-Train-Cleanpass": {"epe": 2.1231}, "Sintel-Train-Finalpass": {"epe": 3.2790},
         "Kitti-Train": {"per_image_epe": 7.6557, "fl_all": 25.2801}},
        f"Ported from the paper's code; trained on {_CHAIRS_THINGS}.",
    )  # fmt: skip
    C_T_V2 = _small(
        "raft_small_C_T_V2-01064c6d.pth", _TRAINED,
        {"Sintel-Train-Cleanpass": {"epe": 1.9901}, "Sintel-Train-Finalpass": {"epe": 3.2831},
         "Kitti-Train": {"per_image_epe": 7.5978, "fl_all": 25.2369}},
        f"Trained from scratch on {_CHAIRS_THINGS}.",
    )  # fmt: skip
    DEFAULT = C_T_V2


@register_model()
@handle_legacy_interface(Raft_Large_Weights.C_T_SKHT_V2)
def raft_large(*, weights: Raft_Large_Weights | None = None, progress=True, **kwargs) -> RAFT:
    """RAFT large (5.3M parameters): residual encoders (instance norm for the features,
    batch norm for the context), a 4-level pyramid of radius 4, two ConvGRUs (1x5, 5x1)
    and the learned upsampling mask.

    Args:
        weights: ``Raft_Large_Weights``, its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: modules to use in place of the defaults (``feature_encoder``,
            ``context_encoder``, ``corr_block``, ``update_block``, ``mask_predictor``).

    Example:
        >>> model = raft_large(weights="DEFAULT").eval()
        >>> flow = model(img1, img2)[-1]
    """
    weights = Raft_Large_Weights.verify(weights)
    return _raft(
        weights=weights,
        progress=progress,
        feature_encoder_layers=(64, 64, 96, 128, 256),
        feature_encoder_block=ResidualBlock,
        feature_encoder_norm_layer=nn.InstanceNorm2d,
        context_encoder_layers=(64, 64, 96, 128, 256),
        context_encoder_block=ResidualBlock,
        context_encoder_norm_layer=nn.BatchNorm2d,
        corr_block_num_levels=4,
        corr_block_radius=4,
        motion_encoder_corr_layers=(256, 192),
        motion_encoder_flow_layers=(128, 64),
        motion_encoder_out_channels=128,
        recurrent_block_hidden_state_size=128,
        recurrent_block_kernel_size=((1, 5), (5, 1)),
        recurrent_block_padding=((0, 2), (2, 0)),
        flow_head_hidden_size=256,
        use_mask_predictor=True,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Raft_Small_Weights.C_T_V2)
def raft_small(*, weights: Raft_Small_Weights | None = None, progress=True, **kwargs) -> RAFT:
    """RAFT small (1M parameters): bottleneck encoders (instance norm for the features,
    none for the context), a 4-level pyramid of radius 3, one 3x3 ConvGRU and bilinear
    upsampling.

    Args:
        weights: ``Raft_Small_Weights``, its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: modules to use in place of the defaults (as ``raft_large``).

    Example:
        >>> model = raft_small(weights="DEFAULT").eval()
    """
    weights = Raft_Small_Weights.verify(weights)
    return _raft(
        weights=weights,
        progress=progress,
        feature_encoder_layers=(32, 32, 64, 96, 128),
        feature_encoder_block=BottleneckBlock,
        feature_encoder_norm_layer=nn.InstanceNorm2d,
        context_encoder_layers=(32, 32, 64, 96, 160),
        context_encoder_block=BottleneckBlock,
        context_encoder_norm_layer=None,
        corr_block_num_levels=4,
        corr_block_radius=3,
        motion_encoder_corr_layers=(96,),
        motion_encoder_flow_layers=(64, 32),
        motion_encoder_out_channels=82,
        recurrent_block_hidden_state_size=96,
        recurrent_block_kernel_size=(3,),
        recurrent_block_padding=(1,),
        flow_head_hidden_size=128,
        use_mask_predictor=False,
        **kwargs,
    )

"""The Generalized R-CNN framework (torchvision.models.detection.generalized_rcnn):
transform -> backbone -> region proposals -> RoI heads -> predictions mapped back."""

from __future__ import annotations

from collections import OrderedDict

from manygrad import Tensor, nn


def _check_targets(targets, training: bool) -> None:
    if not training:
        return
    if targets is None:
        raise ValueError("targets should not be none when in training mode")
    for target in targets:
        boxes = target["boxes"]
        if not isinstance(boxes, Tensor):
            raise TypeError(f"Expected target boxes to be of type Tensor, got {type(boxes)}.")
        if boxes.dim() != 2 or boxes.shape[-1] != 4:
            raise ValueError(
                f"Expected target boxes to be a tensor of shape [N, 4], got {tuple(boxes.shape)}."
            )


def _original_sizes(images) -> list[tuple[int, int]]:
    sizes = []
    for img in images:
        if img.dim() < 2:
            raise ValueError(
                "expecting the last two dimensions of the Tensor to be H and W instead got "
                f"{tuple(img.shape)}"
            )
        sizes.append(tuple(img.shape[-2:]))
    return sizes


def _check_degenerate(targets) -> None:
    """Refuse boxes with no width or height (after resizing): they make NaN targets."""
    if targets is None:
        return
    for idx, target in enumerate(targets):
        boxes = target["boxes"]
        degenerate = (boxes[:, 2:] <= boxes[:, :2]).any(dim=1)
        if degenerate.any():
            bad = boxes[degenerate.nonzero()[0, 0]].tolist()
            raise ValueError(
                "All bounding boxes should have positive height and width. Found invalid box "
                f"{bad} for target at index {idx}."
            )


class GeneralizedRCNN(nn.Module):
    """Images (and targets) through ``transform``, features from ``backbone``, proposals
    from ``rpn``, detections from ``roi_heads``; in training returns the dict of losses,
    in eval a list (per image) of ``{"boxes", "labels", "scores", ...}``.

    Args:
        backbone: returns a feature map or a dict of them.
        rpn: the region proposal network.
        roi_heads: box (and mask / keypoint) heads on the proposals.
        transform: a ``GeneralizedRCNNTransform``.

    Example:
        >>> model = fasterrcnn_resnet50_fpn(weights_backbone=None, num_classes=3).eval()
        >>> predictions = model([mg.rand(3, 300, 400)])
    """

    def __init__(self, backbone: nn.Module, rpn: nn.Module, roi_heads: nn.Module,
                 transform: nn.Module) -> None:  # fmt: skip
        super().__init__()
        self.transform = transform
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self._has_warned = False

    def eager_outputs(self, losses, detections):
        return losses if self.training else detections

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None):
        _check_targets(targets, self.training)
        original_image_sizes = _original_sizes(images)
        images, targets = self.transform(images, targets)
        _check_degenerate(targets)
        features = self.backbone(images.tensors)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        proposals, proposal_losses = self.rpn(images, features, targets)
        detections, detector_losses = self.roi_heads(
            features, proposals, images.image_sizes, targets
        )
        detections = self.transform.postprocess(
            detections, images.image_sizes, original_image_sizes
        )
        losses = {}
        losses.update(detector_losses)
        losses.update(proposal_losses)
        return self.eager_outputs(losses, detections)

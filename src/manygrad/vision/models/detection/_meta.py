"""Class names of the detection weights: COCO's 91 category ids (``"N/A"`` for the ids
COCO leaves unused, so that a label is its COCO id), and Keypoint R-CNN's person classes
and 17 keypoints."""

_COCO_CATEGORIES = [
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter",
    "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A",
    "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip

_COCO_PERSON_CATEGORIES = ["no person", "person"]

_COCO_PERSON_KEYPOINT_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip


def _coco_weights(url: str, num_params: int, metrics: dict, recipe: str, ops: float,
                  file_size: float, docs: str = "", **meta):  # fmt: skip
    """A ``Weights`` entry of a COCO detection checkpoint (``ObjectDetection`` preset)."""
    from .._api import Weights
    from .._presets import ObjectDetection

    meta = {
        "categories": _COCO_CATEGORIES,
        "min_size": (1, 1),
        **meta,
        "num_params": num_params,
        "recipe": recipe,
        "_metrics": {"COCO-val2017": metrics},
        "_ops": ops,
        "_file_size": file_size,
        "_docs": docs or "Trained on COCO train2017; metrics on COCO val2017.",
    }
    return Weights(url=url, transforms=ObjectDetection, meta=meta)

"""Request bodies of ``POST /predict`` as batches of raw samples, or a clear client error."""

from __future__ import annotations

import io
import json
import math

import numpy as np


class BadRequestError(ValueError):
    """A request the server refuses: ``status`` is the HTTP code, the message says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
NPY_TYPES = ("application/x-npy", "application/npy", "application/octet-stream")
JSON_TYPES = ("application/json",)


def as_batch(a: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    """One sample of ``shape`` or a batch ``(N, *shape)`` as a float32 batch."""
    if a.dtype.kind not in "biuf":
        raise BadRequestError(f"{what}: expected numbers, got an array of dtype {a.dtype}")
    n = math.prod(shape)
    if tuple(a.shape) == tuple(shape) or (a.size == n and a.ndim <= len(shape)):
        return a.reshape((1,) + tuple(shape)).astype(np.float32)
    if a.ndim >= 2 and a.shape[0] >= 1 and math.prod(a.shape[1:]) == n:
        return a.reshape((-1,) + tuple(shape)).astype(np.float32)
    raise BadRequestError(
        f"{what}: an array of shape {tuple(a.shape)} doesn't match the model's input shape "
        f"{tuple(shape)} (one sample) or (N, {', '.join(map(str, shape))}) (a batch)",
        422,
    )


def decode(body: bytes, content_type: str, recipe: dict, max_samples: int) -> np.ndarray:
    """The raw samples (in the training data's range) of one request body."""
    inp = recipe.get("input") or {}
    shape = tuple(inp.get("shape") or ())
    lo, hi = inp.get("range") or (0.0, 1.0)
    kind = (content_type or "").split(";")[0].strip().lower()
    if not body:
        raise BadRequestError("the request body is empty; send an image, a .npy array or JSON")
    if kind in IMAGE_TYPES:
        if len(shape) != 3:
            raise BadRequestError(f"this model takes arrays of shape {shape}, not images", 415)
        from ..cli.predict import image_sample

        try:
            x = image_sample(io.BytesIO(body), shape, lo, hi)[None]
        except ImportError:
            raise BadRequestError("this server can't read images: Pillow is missing", 415) from None
        except Exception as e:  # noqa: BLE001 - PIL raises many kinds for bad data
            raise BadRequestError(f"the body is not a readable {kind} image ({e})") from None
    elif kind in NPY_TYPES:
        try:
            a = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as e:  # noqa: BLE001
            raise BadRequestError(f"the body is not a readable .npy array ({e})") from None
        if not isinstance(a, np.ndarray):
            raise BadRequestError("the body is an .npz archive; send one .npy array")
        x = as_batch(a, shape, "application/x-npy")
    elif kind in JSON_TYPES:
        try:
            doc = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequestError(f"the body is not valid JSON ({e})") from None
        if not isinstance(doc, dict) or "inputs" not in doc:
            raise BadRequestError(
                'expected a JSON object {"inputs": [...]} (one sample or a batch)'
            )
        try:
            a = np.asarray(doc["inputs"], dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise BadRequestError(f'"inputs" must be a (nested) list of numbers ({e})') from None
        x = as_batch(a, shape, '"inputs"')
    else:
        raise BadRequestError(
            f"unsupported Content-Type {content_type!r}; send image/png, image/jpeg, "
            "application/x-npy or application/json",
            415,
        )
    if len(x) > max_samples:
        raise BadRequestError(f"{len(x)} samples in one request; at most {max_samples}", 413)
    return x


__all__ = ["BadRequestError", "as_batch", "decode"]

"""``manygrad predict RUN INPUT...``: top-k classes for images or .npy arrays."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from ..errors import ManygradError
from . import _args as A

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm"}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "predict",
        help="classify images or .npy arrays with a trained run",
        description="Print the top-k classes for each input. Images are converted to the "
        "run's channels, resized to its input size and scaled to its input range; .npy "
        "arrays must already be in the training data's range (one sample or a batch).",
    )
    p.add_argument("run", metavar="RUN", help="run directory (from manygrad train)")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="image files or .npy arrays")
    p.add_argument("--top-k", type=A.positive_int, default=3, help="classes to show (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument(
        "--invert", action="store_true", help="invert images (dark digits on a light page)"
    )
    g = p.add_argument_group("text models (a run trained on a .txt file)")
    g.add_argument("--prompt", help="text to continue")
    g.add_argument(
        "--tokens", type=A.count_int, default=200, help="characters to add (default 200)"
    )
    g.add_argument("--temperature", type=A.positive_float, default=0.8, help="(default 0.8)")
    g.add_argument("--seed", type=A.seed_int, default=0, help="sampling seed (default 0)")
    return p


def image_sample(src, shape: tuple, lo: float, hi: float, invert: bool = False) -> np.ndarray:
    """An image (a path or a binary file object) as one sample of the run's input shape
    (C, H, W): converted to its channels, resized, scaled to its input range [lo, hi].
    Raises OSError for data that is not a readable image (a decompression bomb included)."""
    from PIL import Image

    from ..data.sources.images import _no_bombs, _why

    c, h, w = shape
    try:
        with _no_bombs(Image), Image.open(src) as im:
            im = im.convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32)
    except OSError:
        raise
    except Exception as e:  # noqa: BLE001  (a decompression bomb, a decoder's own error)
        raise OSError(_why(e, Image)) from None
    if invert:
        a = 255.0 - a
    a = a / 255.0 * (hi - lo) + lo
    return a[None] if c == 1 else a.transpose(2, 0, 1)


def _image(path: str, shape: tuple, lo: float, hi: float, invert: bool) -> np.ndarray:
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise SystemExit(
            "error: reading images needs Pillow: pip install 'manygrad[images]'"
        ) from None
    try:
        return image_sample(path, shape, lo, hi, invert)
    except OSError as e:
        raise SystemExit(f"error: {path}: not a readable image ({e})") from None


def _npy(path: str, shape: tuple) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise SystemExit(f"error: {path}: not a readable .npy array ({e})") from None
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf" or a.size == 0:
        what = f"dtype {a.dtype}" if isinstance(a, np.ndarray) and a.size else "no numbers"
        raise SystemExit(f"error: {path}: the array holds {what}; the model takes numbers")
    if not np.isfinite(a).all():
        raise SystemExit(f"error: {path}: the array holds NaN or Inf; repair it first")
    n = math.prod(shape)
    if a.size == n:
        return a.reshape((1,) + shape)
    if a.ndim >= 2 and math.prod(a.shape[1:]) == n:  # a batch of samples
        return a.reshape((-1,) + shape)
    raise SystemExit(
        f"error: {path}: array of shape {a.shape} doesn't match the model's input shape "
        f"{shape} (one sample) or (N, *{shape}) (a batch)"
    )


def _inputs(paths: list[str], recipe: dict, invert: bool) -> list[tuple[str, int, np.ndarray]]:
    inp = recipe.get("input", {})
    shape = tuple(inp.get("shape") or ())
    lo, hi = inp.get("range") or (0.0, 1.0)
    out = []
    from ..data.sources.walk import check_regular

    for p in paths:
        try:
            check_regular(p, "predict")
        except OSError as e:
            raise SystemExit(f"error: {e}") from None
        if not os.path.isfile(p):
            raise SystemExit(f"error: {p}: no such file")
        ext = os.path.splitext(p)[1].lower()
        if ext == ".npy":
            batch = _npy(p, shape)
        elif ext in _IMAGE_EXT:
            if len(shape) != 3:
                raise SystemExit(f"error: {p}: the model takes arrays of shape {shape}, not images")
            batch = _image(p, shape, lo, hi, invert)[None]
        else:
            raise SystemExit(
                f"error: {p}: expected an image ({', '.join(sorted(_IMAGE_EXT))}) or a .npy array"
            )
        for i, x in enumerate(batch):
            out.append((p, i if len(batch) > 1 else None, x))
    return out


def _preprocess(x: np.ndarray, recipe: dict) -> np.ndarray:
    from ..train.data import normalise

    pre = recipe.get("input", {}).get("preprocessing")
    if not pre:
        return x.astype(np.float32)
    return normalise(x, pre["mean"], pre["std"])


def predict(run_dir: str, paths: list[str], top_k: int = 3, device="cpu", invert=False):
    """Top-k predictions for each input: a list of ``{"input", "index", "top": [...]}``."""
    from .. import models

    recipe = models.read_recipe(run_dir)
    model = models.load(run_dir, device=device)
    items = _inputs(paths, recipe, invert)
    try:
        tops = classify(model, recipe, np.stack([x for _, _, x in items]), top_k, device)
    except NonFiniteOutputError as e:
        path, idx, _ = items[e.index]
        at = f"{path}[{idx}]" if idx is not None else path
        raise NonFiniteOutputError(e.index, e.count, e.n, at) from None
    return [{"input": path, "index": idx, "top": top} for (path, idx, _), top in zip(items, tops)]


class NonFiniteOutputError(ManygradError, ValueError):
    """The model's output for an input is NaN or Inf (damaged weights or input)."""

    def __init__(self, index: int, count: int, n: int, name: str | None = None):
        self.index, self.count, self.n = index, count, n
        super().__init__(
            f"the model's output for {name or f'sample {index}'} is NaN or Inf ({count} of {n} "
            "inputs); the run's weights or the input are damaged"
        )


CHUNK = 8  # rows per model call in classify


def classify(model, recipe: dict, x: np.ndarray, top_k: int = 3, device="cpu") -> list[list]:
    """The top-k classes (``[{"class", "index", "probability"}, ...]``) of each raw sample in
    the batch ``x`` (in the training data's range; preprocessed here as in training)."""
    import manygrad as mg

    classes = recipe.get("classes")
    x = np.stack([_preprocess(s[None], recipe)[0] for s in x])
    n = len(x)
    # NOTE: BLAS picks its kernels by the number of rows, so a sample's last bits would depend
    # on how many others share its call; model calls of CHUNK rows (zero-padded) make every
    # answer the same alone or in any batch (predict, and serve's batches of requests)
    x = np.concatenate([x, np.zeros((-n % CHUNK,) + x.shape[1:], x.dtype)])
    parts = []
    with mg.no_grad():
        for i in range(0, len(x), CHUNK):
            logits = model(mg.tensor(x[i : i + CHUNK], device=device))
            parts.append(mg.nn.functional.softmax(logits.float(), dim=-1).cpu().numpy())
    probs = np.concatenate(parts)[:n]
    bad = np.flatnonzero(~np.isfinite(probs).all(axis=-1))
    if bad.size:
        raise NonFiniteOutputError(int(bad[0]), int(bad.size), n)
    k = max(1, min(top_k, probs.shape[-1]))
    out = []
    for p in probs:
        top = np.argsort(-p, kind="stable")[:k]
        out.append(
            [
                {
                    "class": classes[int(c)] if int(c) < len(classes or []) else str(int(c)),
                    "index": int(c),
                    "probability": float(p[c]),
                }
                for c in top
            ]
        )
    return out


def generate_text(run_dir: str, prompt: str, tokens: int, temperature: float, seed: int, device,
                  model=None):  # fmt: skip
    """Continue ``prompt`` with a character-level GPT run (``model``: the run's model, when
    it is loaded already)."""
    import manygrad as mg

    from .. import models
    from ..models.gpt import generate

    recipe = models.read_recipe(run_dir)
    chars = recipe.get("classes") or []
    lut = {c: i for i, c in enumerate(chars)}
    unknown = sorted({c for c in prompt if c not in lut})
    if unknown:
        raise SystemExit(f"error: the prompt has characters the model never saw: {unknown}")
    if not prompt:
        raise SystemExit("error: --prompt must not be empty")
    model = model if model is not None else models.load(run_dir, device=device)
    idx = mg.tensor([[lut[c] for c in prompt]], device=device)
    out = generate(model, idx, tokens, temperature=temperature, seed=seed)
    return "".join(chars[i] for i in out.cpu().numpy()[0])


def run(args) -> int:
    from .. import models
    from ..errors import ManygradError
    from ..io.recipes import printable

    try:
        if (models.read_recipe(args.run).get("model") or {}).get("name") == "gpt":
            if args.prompt is None:
                raise SystemExit("error: this run is a text model: pass --prompt TEXT")
            text = generate_text(
                args.run, args.prompt, args.tokens, args.temperature, args.seed, args.device
            )
            if not args.json:  # NOTE: no terminal escapes from the model's characters
                text = "\n".join(printable(line, len(line)) for line in text.split("\n"))
            print(json.dumps({"prompt": args.prompt, "text": text}) if args.json else text)
            return 0
        if not args.inputs:
            raise SystemExit("error: give at least one INPUT (image file or .npy array)")
        res = predict(args.run, args.inputs, args.top_k, args.device, args.invert)
    except (ManygradError, ValueError, TypeError, OSError, ImportError) as e:
        print(f"error: {printable(str(e), 2000)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for r in res:
        name = r["input"] + (f"[{r['index']}]" if r["index"] is not None else "")
        tops = ", ".join(
            f"{printable(t['class'])} ({100 * t['probability']:.1f}%)" for t in r["top"]
        )
        print(f"{printable(name, 1000)}: {tops}")
    return 0

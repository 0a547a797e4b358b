"""``manygrad predict RUN INPUT...``: top-k classes for images or .npy arrays."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

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


def _image(path: str, shape: tuple, lo: float, hi: float, invert: bool) -> np.ndarray:
    from ..data.sources.images import load_image

    c, h, w = shape
    try:
        im = load_image(path, "L" if c == 1 else "RGB")
    except ImportError as e:
        raise SystemExit(f"error: {e}") from None
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {path}: not a readable image ({e})") from None
    from PIL import Image

    a = np.asarray(im.resize((w, h), Image.BILINEAR), dtype=np.float32)
    if invert:
        a = 255.0 - a
    a = a / 255.0 * (hi - lo) + lo
    return a[None] if c == 1 else a.transpose(2, 0, 1)


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
    import manygrad as mg

    from .. import models

    recipe = models.read_recipe(run_dir)
    model = models.load(run_dir, device=device)
    items = _inputs(paths, recipe, invert)
    classes = recipe.get("classes")
    x = np.stack([_preprocess(x[None], recipe)[0] for _, _, x in items])
    with mg.no_grad():
        logits = model(mg.tensor(x, device=device))
        probs = mg.nn.functional.softmax(logits.float(), dim=-1).cpu().numpy()
    bad = [items[i] for i in np.flatnonzero(~np.isfinite(probs).all(axis=-1))]
    if bad:
        path, idx, _ = bad[0]
        at = f"{path}[{idx}]" if idx is not None else path
        raise ValueError(
            f"the model's output for {at} is NaN or Inf ({len(bad)} of {len(items)} inputs); "
            f"the run's weights or the input are damaged"
        )
    k = max(1, min(top_k, probs.shape[-1]))
    results = []
    for (path, idx, _), p in zip(items, probs):
        top = np.argsort(-p, kind="stable")[:k]
        results.append(
            {
                "input": path,
                "index": idx,
                "top": [
                    {
                        "class": classes[int(c)] if int(c) < len(classes or []) else str(int(c)),
                        "index": int(c),
                        "probability": float(p[c]),
                    }
                    for c in top
                ],
            }
        )
    return results


def generate_text(run_dir: str, prompt: str, tokens: int, temperature: float, seed: int, device):
    """Continue ``prompt`` with a character-level GPT run."""
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
    model = models.load(run_dir, device=device)
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

"""The ASGI application of ``manygrad serve RUN``: ``GET /health`` and ``POST /predict``."""

from __future__ import annotations

import json
import os

from .batcher import Batcher
from .decode import BadRequestError, decode


def _starlette():
    try:
        import starlette  # noqa: F401
    except ImportError:
        raise ImportError(
            "manygrad serve needs starlette and uvicorn: pip install 'manygrad[serve]'"
        ) from None


def create_app(run_dir: str, max_batch: int = 32, max_wait_ms: float = 5.0, top_k: int = 3,
               device: str = "cpu", max_body_bytes: int = 16 << 20, max_samples: int = 1024):  # fmt: skip
    """The ASGI app serving the run in ``run_dir``.

    ``POST /predict`` takes ``image/png`` or ``image/jpeg`` (one image), ``application/x-npy``
    (one sample or a batch) or ``application/json`` (``{"inputs": [...]}``) and answers
    ``{"predictions": [...]}``, one object per sample as ``manygrad predict --json`` prints
    them (``?top_k=N`` changes how many classes, ``?name=...`` fills in their ``"input"``).
    Concurrent requests are batched.

    Args:
        run_dir: a run directory (from ``manygrad train``).
        max_batch: most samples per model call (default 32).
        max_wait_ms: how long a request waits for others to batch with (default 5).
        top_k: classes per prediction (default 3).
        device: where the model runs (default ``"cpu"``).
        max_body_bytes: larger request bodies get 413 (default 16 MiB).
        max_samples: more samples in one request get 413 (default 1024).

    Example:
        >>> app = create_app("runs/mlp")   # then: uvicorn.run(app)
    """
    _starlette()
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .. import models
    from ..cli.predict import classify

    recipe = models.read_recipe(run_dir)
    model = models.load(run_dir, device=device)
    text = recipe.get("task") == "language-model"
    n_classes = len(recipe.get("classes") or [])
    # NOTE: every class is ranked once per batch; each request keeps its own top_k
    batcher = Batcher(lambda x: classify(model, recipe, x, max(n_classes, top_k), device),
                      max_batch, max_wait_ms)  # fmt: skip

    async def health(request):
        return JSONResponse({
            "status": "ok", "run": os.path.abspath(run_dir),
            "model": (recipe.get("model") or {}).get("name"),
            "task": recipe.get("task") or "classification",
            "input_shape": (recipe.get("input") or {}).get("shape"),
            "classes": n_classes, "batches": batcher.batches,
        })  # fmt: skip

    async def body_of(request) -> bytes:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > max_body_bytes:
            raise BadRequestError(f"the body has {size} bytes; at most {max_body_bytes}", 413)
        chunks, n = [], 0
        async for chunk in request.stream():
            n += len(chunk)
            if n > max_body_bytes:
                raise BadRequestError(f"the body is larger than {max_body_bytes} bytes", 413)
            chunks.append(chunk)
        return b"".join(chunks)

    def k_of(request) -> int:
        k = request.query_params.get("top_k", str(top_k))
        if not k.isdigit() or int(k) < 1:
            raise BadRequestError(f"top_k must be a positive integer, got {k!r}")
        return int(k)

    async def predict(request):
        submitted = False
        batcher.announce()
        try:
            k = k_of(request)
            body = await body_of(request)
            if text:
                return JSONResponse({"predictions": [await _generate(request, body)]})
            x = decode(body, request.headers.get("content-type", ""), recipe, max_samples)
            submitted = True
            tops = await batcher.submit(x, announced=True)
        except BadRequestError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        except Exception as e:  # noqa: BLE001 - the server keeps serving
            return JSONResponse({"error": f"prediction failed: {type(e).__name__}: {e}"}, 500)
        finally:
            if not submitted:
                batcher.withdraw()
        # NOTE: as predict --json: one sample has index None, a batch's samples 0, 1, ...
        name = request.query_params.get("name")  # what predict --json calls "input"
        preds = [{"input": name, "index": None if len(tops) == 1 else i, "top": t[:k]}
                 for i, t in enumerate(tops)]  # fmt: skip
        return JSONResponse({"predictions": preds})

    async def _generate(request, body: bytes) -> dict:
        import asyncio

        from ..cli.predict import generate_text

        try:
            doc = json.loads(body)
            prompt, tokens = doc["prompt"], int(doc.get("tokens", 100))
            temp, seed = float(doc.get("temperature", 0.8)), int(doc.get("seed", 0))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise BadRequestError(
                f'a text model takes JSON {{"prompt": "...", "tokens": N}} ({e})'
            ) from None
        if not 1 <= tokens <= 10_000:
            raise BadRequestError(f"tokens must be between 1 and 10000, got {tokens}")
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(batcher.pool, generate_text, run_dir, str(prompt),
                                             tokens, temp, seed, device, model)  # fmt: skip
        except SystemExit as e:
            raise BadRequestError(str(e.code).removeprefix("error: ")) from None
        return {"prompt": prompt, "text": out}

    async def http_error(request, exc):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()  # NOTE: runs what is queued before the process ends

    return Starlette(
        routes=[Route("/health", health, methods=["GET"]),
                Route("/predict", predict, methods=["POST"])],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )  # fmt: skip


__all__ = ["create_app"]

"""``manygrad train``: train a built-in model and save a run directory."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from . import _args as A

# Settings used when neither the command line nor a resumed recipe gives one.
DEFAULTS = {
    "data": "digits",
    "model": "mlp",
    "epochs": 30,
    "batch_size": 64,
    "lr": 2e-3,
    "optimizer": "adamw",
    "scheduler": "cosine",
    "weight_decay": 5e-2,
    "label_smoothing": 0.1,
    "precision": "fp32",
    "seed": 0,
    "stream": False,
}
_PARSER: argparse.ArgumentParser | None = None  # the last parser built, to forward --nproc runs


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train",
        help="train a model (default: an MLP on the embedded 8x8 digits)",
        description="Train a built-in model and save it as a run directory "
        "(weights, recipe.json, checkpoint, metrics.csv, TensorBoard events).",
    )
    a = p.add_argument
    a(
        "--data",
        help="embedded dataset name (digits) or a path: a folder of class folders, IDX files, "
        ".npz/.npy/.h5/.zarr arrays, or a .txt file for a character-level GPT (default digits)",
    )
    a(
        "--val-split",
        type=float,
        metavar="F",
        help="fraction of the samples to hold out for testing when the dataset ships no test "
        "split of its own (IDX t10k-* files, test/ or val/ folders, test arrays) (default 0.2)",
    )
    a("--labels", metavar="Y.npy", help="labels of --data X.npy (one class index per sample)")
    a(
        "--model",
        help="architecture: mlp, cnn, resnet, or gpt for text (default mlp); or your own "
        "Module class as path/to/file.py:ClassName or package.module:ClassName",
    )
    a(
        "--model-args",
        metavar="JSON",
        help="constructor arguments of --model as a JSON object, e.g. '{\"width\": 64}'; a "
        "user class also gets num_classes / in_channels / in_features from the data when its "
        "constructor takes them and they are not given",
    )
    a(
        "--epochs",
        type=A.positive_int,
        help=f"passes over the training data (default {DEFAULTS['epochs']})",
    )
    a(
        "--batch-size",
        type=A.positive_int,
        help=f"samples per step (default {DEFAULTS['batch_size']})",
    )
    a("--lr", type=A.positive_float, help=f"peak learning rate (default {DEFAULTS['lr']:g})")
    a("--optimizer", choices=["adamw", "adam", "sgd"], help="(default adamw)")
    a("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    a(
        "--precision",
        choices=["fp32", "fp16", "bf16"],
        help="fp16: autocast + loss scaling; bf16 on a GPU: bf16 parameters and activations "
        "with float32 copies in the optimizer (saved weights are float32), on the CPU: "
        "autocast (default fp32)",
    )
    a("--seed", type=A.seed_int, help="random seed (default 0)")
    a("--out", help="run directory to create (default runs/<time>-<model>)")
    a(
        "--overwrite",
        action="store_true",
        help="write the run into --out even if that folder already holds files",
    )
    a(
        "--image-size",
        type=A.image_size,
        metavar="N|HxW",
        help="resize images of a folder to this size (default: the most common size)",
    )
    a("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    a(
        "--threads",
        default="auto",
        help="CPU threads for matrix products (default auto: 1 for models under 1M "
        "parameters, whose matrices are too small to share out)",
    )
    a(
        "--stream",
        action="store_true",
        default=None,
        help="read --data PATH batch by batch with mg.data.DataLoader instead of loading it "
        "into memory first",
    )
    a("--workers", type=A.count_int, default=0, help="DataLoader workers with --stream (default 0)")
    a(
        "--cuda-graph",
        action="store_true",
        help="capture the training step into a CUDA graph after warm-up and replay it "
        "(needs --device cuda or fakegpu; on a real GPU also MANYGRAD_CUDA_GRAPHS=1)",
    )
    a("--quiet", action="store_true", help="no progress bar")
    a(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes of this machine, started through mpiexec "
        "(one per GPU with --device cuda); --batch-size stays the global batch, so the "
        "result matches one process. On several machines use `manygrad launch`",
    )
    global _PARSER
    _PARSER = p
    return p


def _forwarded_args(args) -> list[str]:
    """The command line of ``args`` without ``--nproc``: what each rank runs."""
    out: list[str] = []
    for act in _PARSER._actions if _PARSER else ():
        if not act.option_strings or act.dest in ("help", "nproc"):
            continue
        v = getattr(args, act.dest, None)
        if v is None or v is False or v == act.default:
            continue
        opt = max(act.option_strings, key=len)
        out += [opt] if act.nargs == 0 else [opt, str(v)]
    return out


def _launch(args) -> int:
    """``--nproc N``: start N ranks of this command through mpiexec and wait for them."""
    import manygrad as mg

    from ..distributed import launch

    if args.nproc < 1:
        print(f"error: --nproc must be at least 1, got {args.nproc}", file=sys.stderr)
        return 2
    if args.out and not args.resume:  # before any rank starts
        from ..train import guard

        try:
            guard.check_out(args.out, overwrite=args.overwrite)
        except guard.RunDirError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    check = args.device
    if (check or "auto").lower() == "auto":  # auto trains on GPUs when there are any
        check = "cuda" if mg.cuda.is_available() else "cpu"
    try:
        argv = ["manygrad", "train", *_forwarded_args(args)]
        return launch.run_command(args.nproc, argv, device=check)
    except (mg.distributed.DistributedError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _join_group(device: str, say) -> str:
    """In a rank started by a launcher: join the process group; returns this rank's device."""
    import manygrad.distributed as dist

    name = "mpi" if device == "cpu" else "auto"
    if device == "fakegpu" and os.environ.get("MANYGRAD_DIST_FAKEGPU") == "1":
        name = "nccl"  # tests: the NCCL code path, on the fake GPU
    dist.init_process_group(backend=name)
    if device.startswith("cuda"):  # each rank takes the GPU of its local rank
        d = dist.get_device()
        device = str(d) if d.type == "cuda" else f"cuda:{dist.get_local_rank()}"
    say(
        f"data-parallel: rank {dist.get_rank()} of {dist.get_world_size()} "
        f"(backend {dist.get_backend()}) on {device}"
    )
    return device


def resolve_device(spec: str, say=print) -> str:
    """``auto`` -> the GPU when one works (and say so), else cpu (and say why)."""
    import manygrad as mg

    spec = (spec or "auto").lower()
    if spec == "auto":
        if mg.cuda.is_available():
            try:
                name = mg.cuda.get_device_name(0)
            except Exception:  # noqa: BLE001  (the name is cosmetic)
                name = "GPU"
            say(f"device: cuda:0 ({name}), picked by --device auto")
            return "cuda:0"
        say(f"device: cpu (no usable GPU: {mg.cuda.why_unavailable()})")
        return "cpu"
    if spec.startswith("cuda") and not mg.cuda.is_available():
        raise SystemExit(
            f"error: --device {spec} asked for a GPU but CUDA is unusable here: "
            f"{mg.cuda.why_unavailable().rstrip('.')}. Use --device cpu (or auto)."
        )
    try:
        mg.backend.check_device(mg.device(spec))
    except Exception as e:  # noqa: BLE001
        raise SystemExit(f"error: --device {spec}: {e}") from None
    return spec


def _settings(args) -> tuple[dict, dict | None]:
    """Merge command line, resumed recipe and defaults."""
    from ..models import read_recipe

    recipe = read_recipe(args.resume) if args.resume else None
    weights = os.path.join(args.resume, "model.safetensors") if args.resume else ""
    if recipe is not None and "import" not in recipe["model"] and os.path.isfile(weights):
        from ..io.recipes import check_weights  # sizes checked before the model is built

        check_weights(recipe, weights)
    s = dict(DEFAULTS)
    if recipe is not None:
        tr = recipe.get("training", {})
        s.update({k: tr[k] for k in DEFAULTS if k in tr})
        s["data"] = recipe.get("data", {}).get("name")
        s["model"] = recipe["model"]["name"]
    for k in DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            if recipe is not None and k not in ("epochs",) and v != s[k]:
                raise SystemExit(
                    f"error: --{k.replace('_', '-')} {v} differs from the run being resumed "
                    f"({s[k]}); only --epochs can change on --resume"
                )
            s[k] = v
    return s, recipe


def model_kwargs(name: str, shape: tuple, num_classes: int) -> dict:
    """Arguments that fit a built-in architecture to samples of ``shape``."""
    name = name.lower()
    if name == "gpt":
        if len(shape) != 1:
            raise SystemExit(
                "error: --model gpt trains on text: pass --data FILE.txt (characters become tokens)"
            )
        return {"vocab_size": num_classes, "block_size": int(shape[0])}
    if name == "mlp":
        # one wide hidden layer: its worst digits test accuracy over seeds 0-4 was 98.1%
        # (hidden layers of 256 and 128: 97.8%)
        return {"in_features": int(math.prod(shape)), "hidden": [512], "num_classes": num_classes}
    if len(shape) != 3:
        raise SystemExit(
            f"error: --model {name} needs image samples (C, H, W), but the data's samples "
            f"have shape {tuple(shape)}; use --model mlp (or gpt for text)"
        )
    if name == "cnn":
        if shape[1] != shape[2]:
            raise SystemExit(f"error: --model cnn needs square images, got {shape[1:]}")
        return {"in_channels": shape[0], "image_size": shape[1], "num_classes": num_classes}
    if name == "resnet":
        return {"in_channels": shape[0], "num_classes": num_classes}
    raise SystemExit(
        f"error: --model {name} can't be fitted to this data from the command line; "
        "use mg.train.fit from Python"
    )


def _cpu_threads(spec: str, n_params: int, ranks: int = 1) -> None:
    from ..threads import set_blas_threads

    if spec == "auto":
        if n_params < 1_000_000:
            set_blas_threads(1)
        elif ranks > 1:  # ranks on one machine share its cores
            set_blas_threads(max(1, (os.cpu_count() or 1) // ranks))
        return
    try:
        n = int(spec)
    except ValueError:
        raise SystemExit(f"error: --threads must be a number or auto, got {spec!r}") from None
    if n < 1:
        raise SystemExit(f"error: --threads must be at least 1 (or auto), got {n}")
    set_blas_threads(n)


def run(args) -> int:
    """``manygrad train``; a rank of a launched job that fails aborts the whole job (the
    other ranks would otherwise wait for it in a collective)."""
    from ..distributed.launch import launched_world_size

    if launched_world_size() == 1:
        return _run(args)
    try:
        rc = _run(args)
    except SystemExit as e:
        if not isinstance(e.code, str):
            raise
        print(e.code, file=sys.stderr)
        rc = 2
    if rc not in (0, 130):
        try:
            from mpi4py import MPI  # NOTE: also when this rank failed before joining
        except ImportError:
            return rc
        sys.stdout.flush()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(rc)
    return rc


def _run(args) -> int:
    t_start = time.perf_counter()
    import manygrad as mg

    from .. import models
    from ..distributed.launch import env_rank, launched_world_size, setup_rank_logging
    from ..errors import ManygradError
    from ..models import user as _user
    from ..train import DivergedError, Trainer, guard
    from ..train import data as D
    from ..train import run as R
    from . import _data, _model_args

    world = launched_world_size()
    if args.nproc is not None and world > 1 and args.nproc != world:
        print(
            f"error: --nproc {args.nproc} in a job that a launcher already started with {world} "
            "ranks; drop --nproc (the launcher sets the number of ranks)",
            file=sys.stderr,
        )
        return 2
    if args.nproc is not None and args.nproc != 1 and world == 1:
        return _launch(args)
    rank = env_rank() if world > 1 else 0
    held: list[str] = []  # what ranks other than 0 say before their log file is open
    say = (lambda *a: None) if args.quiet else print
    if rank and not args.quiet:
        say = lambda *a: held.append(" ".join(map(str, a)))  # noqa: E731
    try:
        s, recipe = _settings(args)
        user_model = _user.is_user_model(s["model"])
        if not user_model and s["model"].lower() not in models.available():
            raise SystemExit(
                f"error: unknown model {s['model']!r}; available models: "
                f"{', '.join(models.available())}"
            )
        if args.out and not args.resume and rank == 0:  # before any data is read
            guard.check_out(args.out, overwrite=args.overwrite)
        device = resolve_device(args.device, say)
        if getattr(args, "cuda_graph", False) and mg.device(device).type == "cpu":
            print(
                "error: --cuda-graph needs a GPU (--device cuda) or the fake GPU (--device "
                "fakegpu); this run is on the CPU",
                file=sys.stderr,
            )
            return 2
        if world > 1:
            device = _join_group(device, say)
        train, test = _data.load(
            s["data"],
            say,
            stream=s["stream"],
            val_split=args.val_split,
            labels=args.labels,
            image_size=A.parse_size(args.image_size),
        )
        text = getattr(train, "extra", {}).get("kind") == "text"
        if text and s["model"] != "gpt":
            if args.model not in (None, "gpt"):
                raise SystemExit(f"error: text data trains --model gpt, not {args.model}")
            s["model"] = "gpt"
        if text and recipe is None:
            s["label_smoothing"] = 0.0  # next-character targets are exact
        data = D.setup(train, test, device, stream=s["stream"], num_workers=args.workers)
        if recipe is not None:
            spec = recipe["model"]
            _model_args.check_resumed(args.model_args, spec)
        elif user_model:
            spec = _model_args.user_spec(s["model"], args.model_args, data)
        else:
            classes = data.classes or []
            kw = model_kwargs(s["model"], data.train.sample_shape, len(classes))
            kw.update(_model_args.parse(args.model_args))
            spec = {"name": s["model"].lower(), "kwargs": kw}
        mg.manual_seed(s["seed"])
        model = models.from_spec(spec)
        out = args.resume or args.out or R.default_run_dir(_model_args.run_name(spec))
        if world > 1:  # rank 0's run directory, for every rank's log file and the checkpoint
            box = [out]
            mg.distributed.broadcast_object_list(box, 0)
            out = box[0]
            if setup_rank_logging(out, rank) is not None:
                say = print
                for line in held:
                    print(line)
        trainer = Trainer(
            model,
            data,
            None,
            epochs=s["epochs"],
            batch_size=s["batch_size"],
            lr=s["lr"],
            optimizer=s["optimizer"],
            scheduler=s["scheduler"],
            weight_decay=s["weight_decay"],
            label_smoothing=s["label_smoothing"],
            device=device,
            precision=s["precision"],
            seed=s["seed"],
            out=out,
            progress=not args.quiet,
            overwrite=args.overwrite,
            cuda_graph=bool(getattr(args, "cuda_graph", False)),
        )
        if args.resume:
            trainer.resume(args.resume)
            if trainer.step >= trainer.total_steps:
                done = trainer.step // max(trainer.steps_per_epoch, 1)
                print(
                    f"{'error: ' if trainer.step > trainer.total_steps else ''}{args.resume} "
                    f"has trained {done} epochs already, so --epochs {s['epochs']} leaves "
                    f"nothing to do; pass --epochs N with N > {done} to train further",
                    file=sys.stderr,
                )
                if trainer.step > trainer.total_steps:
                    return 2
            say(f"resuming {args.resume} at step {trainer.step} of {trainer.total_steps}")
        n_params = sum(p.numel() for p in model.parameters())
        if trainer.device.type == "cpu":
            _cpu_threads(args.threads, n_params, world)
        say(
            f"training {spec['name']} ({n_params:,} parameters) on {data.name}: "
            f"{data.train.n} train / {data.test.n if data.test else 0} test samples"
            + (f" (test: {train.split})" if getattr(train, "split", None) else "")
            + ", "
            f"{s['epochs']} epoch{'s' if s['epochs'] != 1 else ''}, batch {s['batch_size']}, lr {s['lr']:g}, {s['precision']}"
        )
        result = trainer.fit()
    except DivergedError as e:
        print(f"error: training stopped: {e}", file=sys.stderr)
        return 1
    except (ManygradError, ValueError, TypeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t_start
    if result.interrupted:
        if result.checkpoint_step is None:
            print(
                f"\ninterrupted at step {result.step}; no checkpoint was written", file=sys.stderr
            )
            return 130
        print(
            f"\ninterrupted at step {result.step} of {trainer.total_steps}; checkpoint of step "
            f"{result.checkpoint_step} saved in {out}\nresume with: manygrad train --resume {out}",
            file=sys.stderr,
        )
        return 130
    m = result.metrics
    acc = m.get("test_accuracy")
    print(
        (f"test accuracy {100 * acc:.2f}%, " if acc is not None else "")
        + f"wall time {wall:.1f} s; run saved in {out}"
    )
    if trainer.graphed is not None:
        g = trainer.graphed
        print(
            f"cuda graph: {g.captures} capture(s), {g.replays} replays, {g.eager_steps} eager steps"
        )
    return 0

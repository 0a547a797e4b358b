"""Start N ranks through ``mpiexec``, and keep the output of ranks other than 0 in files.

``manygrad launch -n 4 -- manygrad train ...`` and ``manygrad train --nproc 4`` both end in
``run_command``. The same training script also runs unchanged under ``mpirun`` or
``srun``: manygrad takes the ranks from MPI, whichever launcher started it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import backend
from .mpi_backend import DistributedError

_INSTALL_HINT = (
    "install an MPI with `pip install 'manygrad[mpi]'` (mpi4py + the MPICH wheel), load your "
    "cluster's MPI module (e.g. `module load openmpi`), or point MANYGRAD_MPIEXEC at mpiexec"
)
_RANK_VARS = (
    "PMI_RANK",
    "OMPI_COMM_WORLD_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_RANK",
    "SLURM_PROCID",
)


# Run by each rank before its command when launched with a log directory: what
# setup_rank_logging does, without importing manygrad (the command may import it itself).
_SHIM = (
    "import os, sys\n"
    f"vars = {_RANK_VARS!r}\n"
    "rank = next((int(os.environ[v]) for v in vars if os.environ.get(v, '').isdigit()), 0)\n"
    "if rank:\n"
    "    os.makedirs(sys.argv[1], exist_ok=True)\n"
    "    fd = os.open(os.path.join(sys.argv[1], f'rank{rank}.log'),\n"
    "                 os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)\n"
    "    os.dup2(fd, 1)\n"
    "    os.dup2(fd, 2)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def find_mpiexec() -> str:
    """Path of the mpiexec to use: $MANYGRAD_MPIEXEC, the one beside this Python, or PATH.

    The one installed with this interpreter comes first (the ``mpich`` wheel puts it in
    the environment's ``bin``), so that it matches the MPI library mpi4py loads.
    """
    env = os.environ.get("MANYGRAD_MPIEXEC")
    if env:
        if not (Path(env).is_file() or shutil.which(env)):
            raise FileNotFoundError(f"MANYGRAD_MPIEXEC={env!r} does not exist")
        return shutil.which(env) or env
    for base in dict.fromkeys([Path(sys.executable).parent, Path(sys.prefix) / "bin"]):
        cand = base / "mpiexec"
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found:
        return found
    raise FileNotFoundError(f"mpiexec was not found; {_INSTALL_HINT}")


@functools.lru_cache(maxsize=8)
def mpiexec_flavour(mpiexec: str) -> str:
    """'hydra' (MPICH, Intel MPI), 'openmpi', or 'other', from ``mpiexec --version``."""
    try:
        out = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=20)
        text = (out.stdout + out.stderr).lower()
    except (OSError, subprocess.TimeoutExpired):
        return "other"
    if "hydra" in text or "intel" in text:
        return "hydra"
    if "open mpi" in text or "openrte" in text or "prte" in text:
        return "openmpi"
    return "other"


def resolve_command(argv: list[str]) -> list[str]:
    """Run ``manygrad ...`` with this interpreter, so ranks import the same manygrad."""
    argv = list(argv)
    if not argv:
        raise ValueError("launch: no command given; e.g. manygrad launch -n 2 -- python train.py")
    if argv[0] == "manygrad":
        code = "import sys; sys.argv[0] = 'manygrad'; from manygrad.cli.main import main; sys.exit(main())"
        return [sys.executable, "-c", code, *argv[1:]]
    if argv[0] in ("python", "python3"):
        return [sys.executable, *argv[1:]]
    return argv


def build_command(n: int, argv: list[str], hosts: str | None = None, mpiexec: str | None = None,
                  mpi_args: tuple = (), log_dir: str | None = None) -> list[str]:  # fmt: skip
    """The full ``mpiexec`` command line that starts ``n`` copies of ``argv``.

    Args:
        n: number of ranks.
        argv: the command each rank runs.
        hosts: a hostfile (one host per line, optionally ``host:slots``) for several machines.
        mpiexec: the launcher (default: ``find_mpiexec()``).
        mpi_args: extra launcher arguments, passed before the command.
        log_dir: send the output of every rank but 0 to ``log_dir/rank<r>.log``.

    Example:
        >>> build_command(2, ["python", "train.py"])[:3]
        ['/usr/bin/mpiexec', '-n', '2']
    """
    if n < 1:
        raise ValueError(f"launch: -n must be at least 1, got {n}")
    mpiexec = mpiexec or find_mpiexec()
    flavour = mpiexec_flavour(mpiexec)
    cmd = [mpiexec, "-n", str(n)]
    if hosts:
        if not Path(hosts).is_file():
            raise FileNotFoundError(f"launch: hostfile {hosts!r} does not exist")
        cmd += ["--hostfile", hosts] if flavour == "openmpi" else ["-f", hosts]
    if flavour == "openmpi" and not hosts:
        cmd += ["--oversubscribe"]  # NOTE: Open MPI refuses more ranks than cores otherwise
    if flavour == "openmpi" and _is_root():
        # NOTE: Open MPI refuses to start as root unless told; GPU containers run as root
        cmd += ["--allow-run-as-root"]
    command = resolve_command(argv)
    if log_dir:  # each rank first redirects its output, then becomes the command
        command = [sys.executable, "-c", _SHIM, log_dir, *command]
    return cmd + list(mpi_args) + command


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def check_nproc(n: int, device: str | None) -> None:
    """Raise when ``n`` ranks on one machine need more GPUs than it has."""
    if device is None or not str(device).startswith("cuda"):
        return
    have = backend.cuda_device_count()
    if n > have:
        raise DistributedError(
            f"--nproc {n} needs {n} GPUs on this machine, but {have} "
            f"{'is' if have == 1 else 'are'} available"
            + ("" if have else f" ({backend.cuda_status()[1]})")
            + f"; use --nproc {max(have, 1)}"
            + (" or fewer" if have > 1 else "")
            + ", or train on the CPU with --device cpu"
        )


def run_command(n: int, argv: list[str], hosts: str | None = None, device: str | None = None,
                mpi_args: tuple = (), timeout: float | None = None,
                log_dir: str | None = None) -> int:  # fmt: skip
    """Start ``n`` ranks of ``argv`` through mpiexec, wait, and return the exit code.

    Args:
        n: number of ranks.
        argv: the command, e.g. ``["manygrad", "train", "--epochs", "3"]`` or
            ``["python", "train.py"]``; ``manygrad`` and ``python`` run with this interpreter.
        hosts: optional hostfile for several machines.
        device: the training device; with "cuda", ``n`` is checked against the GPUs here.
        mpi_args: extra launcher arguments.
        timeout: seconds before the whole launch is killed (default: none).
        log_dir: send the output of every rank but 0 to ``log_dir/rank<r>.log``.

    Example:
        >>> run_command(2, ["manygrad", "train", "--model", "mlp"])
        0
    """
    if not hosts:
        check_nproc(n, device)
    cmd = build_command(n, argv, hosts, mpi_args=mpi_args, log_dir=log_dir)
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["MANYGRAD_LAUNCHED"] = "1"
    proc = subprocess.Popen(cmd, env=env)
    try:
        return proc.wait(timeout=timeout)
    except KeyboardInterrupt:
        # NOTE: mpiexec passes the Ctrl-C on to the ranks, which may still be saving a
        # checkpoint: wait for them; a second Ctrl-C stops the job at once.
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            return 130
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        print(f"manygrad launch: stopped after {timeout} s", file=sys.stderr)
        return 124


def launched_world_size() -> int:
    """Number of ranks the launcher (mpiexec, mpirun, srun) started; 1 when run directly.

    Lets a script decide to call ``init_process_group`` only when it runs as a job.

    Example:
        >>> if launched_world_size() > 1:
        ...     dist.init_process_group()
    """
    env = os.environ
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        if env.get(var, "").isdigit():
            return int(env[var])
    if "SLURM_STEP_ID" in env and env.get("SLURM_NTASKS", "").isdigit():  # inside srun
        return int(env["SLURM_NTASKS"])
    return 1


def env_rank() -> int:
    """This process's rank from the launcher's environment (0 when not launched)."""
    from . import process_group as pg  # noqa: PLC0415

    if pg.is_initialized():
        return pg.get_rank()
    for var in _RANK_VARS:
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def setup_rank_logging(run_dir: str | os.PathLike, rank: int | None = None) -> Path | None:
    """Send stdout/stderr of every rank but 0 to ``run_dir/rank<r>.log``; rank 0 prints.

    Redirects the file descriptors, so output of C libraries and subprocesses goes there too.
    Returns the log file's path, or None on rank 0.

    Example:
        >>> setup_rank_logging("runs/exp1")   # on rank 3: runs/exp1/rank3.log
    """
    rank = env_rank() if rank is None else rank
    if rank == 0:
        return None
    path = Path(run_dir) / f"rank{rank}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return path

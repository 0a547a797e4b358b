"""``manygrad launch -n N [--hosts FILE] -- <command...>``: start N ranks through mpiexec."""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``launch`` subcommand on an argparse subparsers object."""
    p = subparsers.add_parser(
        "launch",
        help="run a command on N ranks through mpiexec (data-parallel training)",
        description=(
            "Start N copies of a command through mpiexec, e.g. "
            "`manygrad launch -n 4 -- manygrad train --model mlp`. Each rank finds its rank, "
            "world size and GPU through MPI; only rank 0 prints."
        ),
    )
    p.add_argument("-n", "--nproc", type=int, required=True, help="number of ranks")
    p.add_argument("--hosts", metavar="FILE", help="hostfile listing the machines (host[:slots])")
    p.add_argument(
        "--device", default=None,
        help="training device; with cuda, -n is checked against the GPUs of this machine",
    )  # fmt: skip
    p.add_argument(
        "--mpi-arg", action="append", default=[], metavar="ARG",
        help="extra argument for mpiexec (repeatable), e.g. --mpi-arg=-bind-to --mpi-arg=core",
    )  # fmt: skip
    p.add_argument(
        "--log-dir", metavar="DIR",
        help="write the output of every rank but 0 to DIR/rank<r>.log (rank 0 prints)",
    )  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="print the mpiexec command and exit")
    # NOTE: not named "command": that is the top-level parser's name for the subcommand
    p.add_argument(
        "argv", nargs=argparse.REMAINDER, metavar="COMMAND", help="-- then the command to run"
    )
    return p


def abort_on_error(command: list[str]) -> list[str]:
    """``python SCRIPT ...`` -> ``python -m mpi4py SCRIPT ...``: a rank that fails (an
    uncaught exception, or a non-zero exit) then aborts the whole job, instead of leaving
    the other ranks waiting for it in a collective."""
    if len(command) < 2 or not os.path.basename(command[0]).startswith("python"):
        return command
    if command[1].startswith("-"):  # -m, -c, options: run as given
        return command
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return command
    return [command[0], "-m", "mpi4py", *command[1:]]


def run(args: argparse.Namespace) -> int:
    """Execute ``manygrad launch``; returns the exit code of mpiexec."""
    from ..distributed import launch

    command = list(args.argv)
    if command and command[0] == "--":
        command = command[1:]
    command = abort_on_error(command)
    if not command:
        print("manygrad launch: give the command after --, e.g. "
              "manygrad launch -n 2 -- python train.py", file=sys.stderr)  # fmt: skip
        return 2
    try:
        if args.dry_run:
            print(shlex.join(launch.build_command(args.nproc, command, args.hosts,
                                                mpi_args=tuple(args.mpi_arg),
                                                log_dir=args.log_dir)))  # fmt: skip
            return 0
        if not args.hosts:
            launch.check_nproc(args.nproc, args.device)
        return launch.run_command(args.nproc, command, args.hosts, mpi_args=tuple(args.mpi_arg),
                                  log_dir=args.log_dir)  # fmt: skip
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"manygrad launch: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run ``launch`` on its own: ``python -m manygrad.cli.launch -n 2 -- python x.py``."""
    parser = argparse.ArgumentParser(prog="manygrad")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["launch", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    sys.exit(main())

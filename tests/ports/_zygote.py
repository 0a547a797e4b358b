"""A process that imports PyTorch once and forks a fresh child for each port run.

Importing PyTorch takes ~3 s of a 2-core CI machine's time, more than most ports' training;
the port tests run their ~200 PyTorch references as forks of this process instead of as
new interpreters. A child starts from the state right after the imports below (nothing has
run in PyTorch yet: its thread pools, random generators and kernels are untouched), so it
computes what ``python _sync.py SCRIPT ARGS`` computes.

Protocol, one JSON object per line: the client writes
``{"argv": [...], "stdout": PATH, "stderr": PATH}``; the zygote forks, answers
``{"pid": PID}`` at once and ``{"rc": RC}`` when the child has exited (``-N`` when a signal
N ended it, as ``subprocess`` reports). End of input ends the zygote.
"""

import json
import os
import runpy
import sys
import traceback

import numpy  # noqa: F401
import torch  # noqa: F401
import torch.distributions  # noqa: F401
import torch.nn  # noqa: F401
import torch.optim  # noqa: F401
import torch.utils.data  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
SYNC = os.path.join(HERE, "_sync.py")


def _child(request: dict) -> int:
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    os.close(0)
    sys.argv = [SYNC, *request["argv"]]
    code = 0
    try:
        runpy.run_path(SYNC, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return code


def main() -> None:
    reply = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        reply.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                os._exit(code)
        reply.write(json.dumps({"pid": pid}) + "\n")
        reply.flush()
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        reply.write(json.dumps({"rc": rc}) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()

"""Load test of ``manygrad serve``: requests/s and p50/p99 latency at several concurrencies.

Trains the default run (an MLP on the embedded digits) into a temp dir, starts
``manygrad serve`` on 127.0.0.1, and sends one-sample ``application/x-npy`` requests from
client threads (one keep-alive connection each). Prints a Markdown table for RESULTS.md.

Run: PYTHONPATH=src python benchmarks/serve.py [--requests 2000] [--concurrency 1,32]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"serve exited: {proc.stderr.read().decode()}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("serve did not come up")


def load(port: int, bodies: list[bytes], n: int, conc: int) -> tuple[float, list[float]]:
    """Send ``n`` requests from ``conc`` threads; returns (seconds, latencies)."""
    lat: list[float] = []
    lock, counter = threading.Lock(), iter(range(n))

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t = time.perf_counter()
            c.request("POST", "/predict", bodies[i % len(bodies)],
                      {"Content-Type": "application/x-npy"})  # fmt: skip
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            mine.append(time.perf_counter() - t)
        c.close()
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    a = ap.parse_args()
    from manygrad.cli.main import main as cli
    from manygrad.datasets import load_digits

    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as d:
        run = os.path.join(d, "run")
        assert cli(["train", "--out", run, "--quiet", "--device", "cpu"]) == 0
        x, _ = load_digits("test")
        bodies = []
        for s in x[:100]:
            buf = io.BytesIO()
            np.save(buf, s)
            bodies.append(buf.getvalue())
        port = _port()
        cmd = [sys.executable, "-m", "manygrad", "serve", run, "--port", str(port),
               "--max-batch", str(a.max_batch), "--max-wait-ms", str(a.max_wait_ms)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            _wait(port, proc)
            load(port, bodies, 200, 4)  # warm-up
            print(f"manygrad serve, MLP (38k parameters) on 8x8 digits, one-sample .npy "
                  f"requests, max batch {a.max_batch}, max wait {a.max_wait_ms:g} ms; "
                  f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
                  "client and server on the same machine\n")  # fmt: skip
            print("| concurrency | requests/s | p50 ms | p99 ms |\n|---|---|---|---|")
            for conc in (int(c) for c in a.concurrency.split(",")):
                secs, lat = load(port, bodies, a.requests, conc)
                p50, p99 = np.percentile(np.asarray(lat) * 1000, [50, 99])
                print(f"| {conc} | {a.requests / secs:.0f} | {p50:.2f} | {p99:.2f} |")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()

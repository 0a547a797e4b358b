"""``manygrad serve``: a real server process on 127.0.0.1, talked to over HTTP."""

import asyncio
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from manygrad.cli.main import main  # noqa: E402
from manygrad.datasets import load_digits  # noqa: E402
from manygrad.serve import Batcher  # noqa: E402

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "src")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(port, method, path, body=None, ctype=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": ctype} if ctype else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serve") / "mlp")
    assert main(["train", "--epochs", "2", "--out", out, "--quiet", "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def server(run_dir):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    cmd = [sys.executable, "-m", "manygrad", "serve", run_dir, "--port", str(port),
           "--max-batch", "16", "--max-wait-ms", "20"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(300):  # NOTE: bounded: at most ~30 s for the server to come up
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {proc.stderr.read().decode()}")
        try:
            if _request(port, "GET", "/health", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("serve did not answer /health")
    yield proc, port
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _predict_json(run_dir, tmp_path, arr, capsys):
    path = str(tmp_path / "in.npy")
    np.save(path, arr)
    capsys.readouterr()
    assert main(["predict", run_dir, path, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_health(server):
    _, port = server
    status, doc = _request(port, "GET", "/health")
    assert status == 200 and doc["status"] == "ok" and doc["input_shape"] == [1, 8, 8]


def test_one_sample_and_batch_match_predict_json(server, run_dir, tmp_path, capsys):
    _, port = server
    x, _ = load_digits("test")
    status, doc = _request(port, "POST", "/predict?name=in.npy", _npy(x[0]), "application/x-npy")
    want = _predict_json(run_dir, tmp_path, x[0], capsys)
    assert status == 200
    assert [{**p, "input": str(tmp_path / "in.npy")} for p in doc["predictions"]] == want
    status, doc = _request(port, "POST", "/predict", _npy(x[:5]), "application/x-npy")
    want = _predict_json(run_dir, tmp_path, x[:5], capsys)
    assert status == 200 and [p["top"] for p in doc["predictions"]] == [w["top"] for w in want]
    assert [p["index"] for p in doc["predictions"]] == [0, 1, 2, 3, 4]
    body = json.dumps({"inputs": x[:2].tolist()}).encode()
    status, doc = _request(port, "POST", "/predict?top_k=1", body, "application/json")
    assert status == 200 and [len(p["top"]) for p in doc["predictions"]] == [1, 1]
    assert doc["predictions"][0]["top"][0] == want[0]["top"][0]


def test_png_matches_predict(server, run_dir, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    _, port = server
    x, _ = load_digits("test")
    path = str(tmp_path / "d.png")
    Image.fromarray((x[3, 0] * 255 / 16).astype(np.uint8)).save(path)
    capsys.readouterr()
    assert main(["predict", run_dir, path, "--json"]) == 0
    want = json.loads(capsys.readouterr().out)
    with open(path, "rb") as f:
        status, doc = _request(port, "POST", "/predict", f.read(), "image/png")
    assert status == 200 and doc["predictions"][0]["top"] == want[0]["top"]


def test_64_concurrent_requests_are_batched_and_identical(server, run_dir, tmp_path, capsys):
    _, port = server
    x, _ = load_digits("test")
    want = [w["top"] for w in _predict_json(run_dir, tmp_path, x[:64], capsys)]
    before = _request(port, "GET", "/health")[1]["batches"]

    def one(i):
        return _request(port, "POST", "/predict", _npy(x[i]), "application/x-npy")

    with ThreadPoolExecutor(32) as pool:
        got = list(pool.map(one, range(64)))
    assert all(s == 200 for s, _ in got)
    for i, (_, doc) in enumerate(got):
        (p,) = doc["predictions"]
        assert p["top"] == want[i]  # exactly: answers don't depend on what shares a batch
    batches = _request(port, "GET", "/health")[1]["batches"] - before
    assert batches < 64  # some requests shared a model call


@pytest.mark.parametrize(
    "body, ctype, status, want",
    [
        (b"\x89PNG garbage", "image/png", 400, "not a readable image/png"),
        (b"garbage", "application/x-npy", 400, "not a readable .npy"),
        (b'{"inputs": [1, 2', "application/json", 400, "not valid JSON"),
        (b'{"x": 1}', "application/json", 400, '{"inputs": [...]}'),
        (b'{"inputs": [[1, "a"]]}', "application/json", 400, "numbers"),
        (_npy(np.zeros((3, 5), np.float32)), "application/x-npy", 422, "input shape (1, 8, 8)"),
        (_npy(np.array(["a", "b"])), "application/x-npy", 400, "expected numbers"),
        (b"", "application/x-npy", 400, "empty"),
        (b"hello", "text/plain", 415, "unsupported Content-Type"),
        (_npy(np.zeros((2000, 1, 8, 8), np.float32)), "application/x-npy", 413, "at most 1024"),
    ],
)
def test_bad_bodies_get_4xx_json_and_the_server_stays_up(server, body, ctype, status, want):
    proc, port = server
    got, doc = _request(port, "POST", "/predict", body, ctype)
    assert got == status and want in doc["error"]
    assert proc.poll() is None and _request(port, "GET", "/health")[0] == 200


def test_unknown_path_and_method_are_json(server):
    _, port = server
    assert _request(port, "GET", "/nope") == (404, {"error": "Not Found"})
    assert _request(port, "GET", "/predict")[0] == 405


def test_sigterm_drains_and_stops(run_dir):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    cmd = [sys.executable, "-m", "manygrad", "serve", run_dir, "--port", str(port),
           "--max-wait-ms", "200"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                if _request(port, "GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        x, _ = load_digits("test")
        with ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(_request, port, "POST", "/predict", _npy(x[i]),
                                "application/x-npy") for i in range(4)]  # fmt: skip
            time.sleep(0.05)  # the requests are waiting in the batch queue (200 ms)
            proc.send_signal(signal.SIGTERM)
            results = [f.result() for f in futs]
        assert [s for s, _ in results] == [200] * 4  # in-flight requests were answered
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0 and b"stopped" in out, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_bad_arguments(run_dir, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", run_dir, "--max-batch", "0"]) == 2
    assert "--max-batch" in capsys.readouterr().err


def test_batcher_groups_requests_and_reports_errors():
    calls = []

    def fn(x):
        calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative")
        return [float(v) for v in x[:, 0]]

    async def go():
        b = Batcher(fn, max_batch=4, max_wait_ms=50)
        await b.start()
        outs = await asyncio.gather(*(b.submit(np.full((1, 1), i, np.float32)) for i in range(6)))
        with pytest.raises(ValueError, match="negative"):
            await b.submit(-np.ones((1, 1), np.float32))
        await b.stop()
        return outs

    outs = asyncio.run(go())
    assert outs == [[float(i)] for i in range(6)]
    assert calls[:2] == [4, 2] and calls[2] == 1


def test_text_run_continues_prompts(tmp_path, capsys):
    import manygrad as mg
    from manygrad.train import run as R

    run = tmp_path / "gpt"
    run.mkdir()
    chars = list("abc ")
    mg.manual_seed(0)
    model = mg.models.get("gpt", vocab_size=4, block_size=8, n_layer=1, n_head=2, n_embd=8)
    mg.save(model.state_dict(), str(run / R.WEIGHTS))
    R.write_recipe(str(run), {"model": model.recipe, "task": "language-model", "classes": chars,
                              "input": {"shape": [8], "dtype": "int64"}})  # fmt: skip
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    cmd = [sys.executable, "-m", "manygrad", "serve", str(run), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                if _request(port, "GET", "/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"prompt": "ab", "tokens": 6}).encode()
        status, doc = _request(port, "POST", "/predict", body, "application/json")
        capsys.readouterr()
        assert main(["predict", str(run), "--prompt", "ab", "--tokens", "6", "--json"]) == 0
        want = json.loads(capsys.readouterr().out)
        assert status == 200 and doc["predictions"] == [want]
        bad = json.dumps({"prompt": "xyz"}).encode()
        status, doc = _request(port, "POST", "/predict", bad, "application/json")
        assert status == 400 and "never saw" in doc["error"]
        status, doc = _request(port, "POST", "/predict", b"[1]", "application/json")
        assert status == 400 and '"prompt"' in doc["error"]
    finally:
        proc.terminate()
        proc.wait(30)


def test_default_host_is_local_and_a_taken_port_is_an_error(run_dir, capsys):
    from manygrad.cli.main import build_parser

    assert build_parser("serve").parse_args(["serve", run_dir]).host == "127.0.0.1"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", run_dir, "--port", str(port), "--log-level", "critical"]) == 2
    assert f"can't listen on 127.0.0.1:{port}" in capsys.readouterr().err

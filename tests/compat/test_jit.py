"""torch.jit under manygrad: script and trace give back what they are given; jit.save and
jit.load round-trip a model through manygrad's archive and refuse PyTorch's TorchScript
archives with the way to load weights instead."""

import pytest

import manygrad as mg


def test_script_and_trace_return_the_callable():
    def f(x):
        return x * 2

    assert mg.jit.script(f) is f
    assert mg.jit.script()(f) is f
    m = mg.nn.Linear(2, 3)
    x = mg.randn(4, 2)
    traced = mg.jit.trace(m, x)
    assert traced is m and bool((traced(x) == m(x)).all())

    @mg.jit.ignore
    def g(x):
        return x + 1

    @mg.jit.unused()
    def h(x):
        return x - 1

    assert float(g(mg.tensor(1.0))) == 2.0 and float(h(mg.tensor(1.0))) == 0.0
    assert not mg.jit.is_scripting() and not mg.jit.is_tracing()
    assert mg.jit.wait(mg.jit.fork(f, mg.tensor(3.0))).item() == 6.0
    assert isinstance(m, mg.jit.ScriptModule)


def test_save_and_load_round_trip(tmp_path):
    import io

    m = mg.jit.script(mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.GELU(), mg.nn.Linear(4, 2)))
    x = mg.randn(5, 3)
    path = str(tmp_path / "m.pt")
    mg.jit.save(m, path, _extra_files={"config.json": '{"classes": 2}', "raw.bin": b"\x00\x01"})
    extra = {"config.json": "", "missing.txt": ""}
    got = mg.jit.load(path, map_location="cpu", _extra_files=extra)
    assert isinstance(got, mg.nn.Sequential) and got is not m
    assert extra == {"config.json": b'{"classes": 2}', "missing.txt": ""}
    assert bool((got(x) == m(x)).all())
    buf = io.BytesIO()
    mg.jit.save(mg.jit.trace(m, x), buf)
    buf.seek(0)
    assert bool((mg.jit.load(buf)(x) == m(x)).all())
    # a file of another kind names the right loader
    mg.save(m.state_dict(), str(tmp_path / "w.pt"))
    with pytest.raises(RuntimeError, match="not an archive written by jit.save.*mg.load"):
        mg.jit.load(str(tmp_path / "w.pt"))
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(RuntimeError, match="not an archive written by jit.save"):
        mg.jit.load(str(tmp_path / "junk.pt"))


def test_load_refuses_torchscript_archives(tmp_path):
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "ts.pt")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    with pytest.raises(RuntimeError, match="TorchScript archive.*load_state_dict"):
        mg.jit.load(path)


def test_a_scripted_pytorch_program_runs(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "p.py"
    script.write_text(
        "import torch\n"
        "@torch.jit.script\n"
        "def gelu(x: torch.Tensor) -> torch.Tensor:\n"
        "    return x * 0.5 * (1.0 + torch.erf(x / 1.41421356237))\n"
        "net = torch.jit.trace(torch.nn.Linear(3, 1), torch.randn(2, 3))\n"
        "print(float(gelu(torch.tensor([1.0])).sum()), net(torch.ones(1, 3)).shape)\n"
    )
    out = subprocess.run([sys.executable, "-m", "manygrad", "run", str(script)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("0.841")


def test_sdpa_kernel_records_the_choice_and_restores_it():
    from manygrad.nn.attention import SDPBackend, sdpa_kernel

    q = mg.randn(1, 2, 4, 8)
    want = mg.nn.functional.scaled_dot_product_attention(q, q, q)
    with sdpa_kernel([SDPBackend.MATH]):
        assert mg.backends.cuda.math_sdp_enabled()
        assert not mg.backends.cuda.flash_sdp_enabled()
        got = mg.nn.functional.scaled_dot_product_attention(q, q, q)
    assert mg.backends.cuda.flash_sdp_enabled()
    assert bool((got == want).all())

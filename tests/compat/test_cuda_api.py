"""PyTorch's torch.cuda / torch.amp / torch.compiler names that scripts use, on a machine
with or without a GPU; custom_fwd/custom_bwd compared with PyTorch on the CPU."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import manygrad as mg


def test_constants_and_top_level_names():
    assert mg.inf == math.inf and math.isnan(mg.nan) and mg.pi == math.pi and mg.e == math.e
    assert mg.newaxis is None
    assert mg.ones(3)[mg.newaxis].shape == (1, 3)
    assert mg.GradScaler is mg.amp.GradScaler
    assert mg.cuda.OutOfMemoryError is mg.OutOfMemoryError
    assert issubclass(mg.OutOfMemoryError, RuntimeError)
    assert issubclass(mg.OutOfMemoryError, MemoryError)


def test_out_of_memory_is_pytorchs_error_naming_the_op():
    with pytest.raises(mg.OutOfMemoryError, match="Mul: out of memory on the CPU"):
        mg.ones(1).expand(10**6, 10**6) * 2


def test_compiler_functions():
    def f(x):
        return x + 1

    assert mg.compiler.disable(f) is f
    assert mg.compiler.disable(recursive=False)(f) is f
    assert mg.compiler.is_compiling() is False
    assert mg.compiler.is_dynamo_compiling() is False
    mg.compiler.reset()


def test_nvtx_ranges_nest_and_do_nothing_without_a_gpu():
    nvtx = mg.cuda.nvtx
    assert nvtx.range_push("a") == 0
    assert nvtx.range_push("b") == 1
    assert nvtx.range_pop() == 1
    assert nvtx.range_pop() == 0
    rid = nvtx.range_start("c")
    nvtx.range_end(rid)
    nvtx.mark("m")

    @nvtx.range("step {}", 3)
    def step():
        return 7

    assert step() == 7
    with nvtx.range("block"):
        pass


def test_cuda_amp_spellings():
    # NOTE: PyTorch's FutureWarning names the current spelling
    with pytest.warns(FutureWarning, match=r"torch.amp.autocast\('cuda', args...\)"):
        assert mg.cuda.amp.autocast().device_type == "cuda"
    with pytest.warns(FutureWarning):
        assert mg.cuda.amp.autocast(dtype=mg.bfloat16).fast_dtype is mg.bfloat16
    with pytest.warns(FutureWarning, match=r"torch.amp.GradScaler\('cuda', args...\)"):
        with pytest.warns(UserWarning, match="CUDA is not available") if not \
                mg.cuda.is_available() else _nothing():  # fmt: skip
            s = mg.cuda.amp.GradScaler(init_scale=8.0)
    assert isinstance(s, mg.amp.GradScaler)
    with pytest.warns(FutureWarning, match=r"torch.amp.GradScaler\('cpu', args...\)"):
        s = mg.cpu.amp.GradScaler(init_scale=4.0)
    assert s.get_scale() == 4.0 and s._device == "cpu"
    assert mg.amp.is_autocast_available("cuda") and not mg.amp.is_autocast_available("tpu")


class _nothing:  # noqa: N801
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.skipif(mg.cuda.is_available(), reason="checks the answers without a GPU")
def test_cuda_queries_without_a_gpu():
    assert mg.cuda.memory_stats()["allocated_bytes.all.current"] == 0
    assert "allocated_bytes.all.current" in mg.cuda.memory_summary()
    assert mg.cuda.max_memory_reserved() == 0
    assert mg.cuda.get_arch_list() == []
    assert mg.cuda.is_initialized() is False
    assert mg.cuda.can_device_access_peer(0, 1) is False
    for fn in (mg.cuda.get_rng_state, mg.cuda.mem_get_info, mg.cuda.init):
        with pytest.raises(RuntimeError, match="no usable GPU"):
            fn()
    with pytest.raises(ValueError, match="fraction must be in"):
        mg.cuda.set_per_process_memory_fraction(1.5)
    mg.cuda.set_sync_debug_mode("warn")
    assert mg.cuda.get_sync_debug_mode() == 1
    mg.cuda.set_sync_debug_mode(0)
    with mg.cuda.device_of(mg.ones(1)):
        pass


def test_set_stream_makes_it_current():
    s = mg.cuda.Stream()
    with mg.cuda.StreamContext(s):
        assert mg.cuda.current_stream() is s
    assert mg.cuda.current_stream() is not s


CUSTOM = textwrap.dedent("""
    import torch

    class MyMM(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a @ b

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g @ b.T, a.T @ g

    class Keep(torch.autograd.Function):
        @staticmethod
        @torch.amp.custom_fwd(device_type="cpu")
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a @ a

        @staticmethod
        @torch.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            print("bwd sees autocast", torch.is_autocast_enabled("cpu"))
            return g @ a.T + a.T @ g

    torch.manual_seed(0)
    a = torch.tensor([[0.5, -1.25, 2.0], [1.5, 0.75, -0.5], [0.25, 1.0, 1.75]],
                     requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = MyMM.apply(a, a)
        z = Keep.apply(a)
    print(y.dtype, z.dtype)
    (y.sum() + z.float().sum()).backward()
    print(a.grad.dtype, [round(v, 3) for v in a.grad.flatten().tolist()])
""")


def test_custom_fwd_and_bwd_match_torch(tmp_path):
    pytest.importorskip("torch")
    script = tmp_path / "custom.py"
    script.write_text(CUSTOM)
    ref = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    got = subprocess.run([sys.executable, "-m", "manygrad", "run", str(script)],
                         capture_output=True, text=True)  # fmt: skip
    assert ref.returncode == 0, ref.stderr
    assert got.returncode == 0, got.stderr
    assert got.stdout == ref.stdout  # dtypes print as torch.* under manygrad run


def test_custom_fwd_requires_a_device_type():
    with pytest.raises(TypeError):
        mg.amp.custom_fwd(lambda ctx, x: x)
    with pytest.raises(TypeError, match="device_type must be a string"):
        mg.amp.custom_fwd(lambda ctx, x: x, device_type=None)

    class Ctx:
        pass

    with pytest.warns(FutureWarning, match="device_type='cuda'"):
        fwd = mg.cuda.amp.custom_fwd(lambda ctx, x: x)
    np.testing.assert_equal(fwd(Ctx(), 3), 3)

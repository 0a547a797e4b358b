"""bf16 end to end on a GPU (``precision="bf16"``, ``--precision bf16``).

On ``cuda`` (and the fake GPU that stands in for it in tests) the model's parameters,
buffers and activations are bfloat16, inputs are cast on the way in, and the optimizer
updates float32 copies of the parameters (``Optimizer.master_weights``; on a GPU the fused
multi-tensor step does it in one launch). What is saved is float32: the copies for the
parameters, the buffers widened, so ``predict``, ``export`` and ``--resume`` load it as
any run. On the CPU, bf16 stays autocast (float32 parameters), as NumPy has no fast bf16
arithmetic.
"""

from __future__ import annotations


def end_to_end(precision: str, device) -> bool:
    """Whether training keeps parameters and activations in bf16 (bf16 on a GPU)."""
    return precision == "bf16" and device.type != "cpu"


def to_bf16(model) -> None:
    """Make ``model``'s floating parameters and buffers bf16 in place (the same Parameter
    objects, so an optimizer made on them keeps them); the trainer then sets the
    optimizer's ``master_weights``."""
    import manygrad as mg

    model.to(mg.bfloat16)


def cast_input(x):
    """A floating batch in bf16 (token ids and other integers unchanged)."""
    import manygrad as mg

    if x.is_floating_point() and x.dtype != mg.bfloat16:
        return x.to(mg.bfloat16)
    return x


def float32_state_dict(model, optimizer) -> dict:
    """``model.state_dict()`` in float32: each parameter's float32 copy where the optimizer
    has one (its exact value), other floating tensors widened."""
    import manygrad as mg

    copies = {}
    for name, p in model.named_parameters():
        m = optimizer.state.get(p, {}).get("master_param")
        if m is not None:
            copies[name] = m
    out = {}
    for k, v in model.state_dict().items():
        if k in copies:
            v = copies[k]
        elif v.is_floating_point() and v.dtype != mg.float32:
            v = v.float()
        out[k] = v
    return out

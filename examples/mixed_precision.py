"""Mixed precision: matrix products in a 16-bit dtype under ``mg.autocast``, losses scaled
by ``mg.amp.GradScaler`` so small float16 gradients do not underflow.

On a GPU this is float16 (halves memory traffic, uses the tensor cores); on the CPU autocast
uses bfloat16. Run with ``PYTHONPATH=src python examples/mixed_precision.py``.
"""

import manygrad as mg
import manygrad.nn.functional as F
from manygrad import nn


def main():
    mg.manual_seed(0)
    device = "cuda" if mg.cuda.is_available() else "cpu"
    model = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 4)).to(device)
    opt = mg.optim.AdamW(model.parameters(), lr=3e-3)
    scaler = mg.amp.GradScaler(device, enabled=device == "cuda")  # bf16 needs no scaling
    x = mg.randn(256, 32, device=device)
    y = (x[:, :4].sum(dim=1) > 0).long() + 2 * (x[:, 4] > 0).long()
    for step in range(1, 101):
        with mg.autocast(device):
            logits = model(x)  # linear layers run in float16 / bfloat16
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)  # skips the step if a gradient overflowed
        scaler.update()
        if step % 25 == 0:
            print(f"step {step}: loss {loss.item():.4f} ({logits.dtype} activations)")


if __name__ == "__main__":
    main()

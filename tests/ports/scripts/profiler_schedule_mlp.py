"""Profiling a training loop the way PyTorch's profiler recipe does it: torch.profiler.profile
with activities=[ProfilerActivity.CPU], a schedule(wait=1, warmup=1, active=2, repeat=1),
on_trace_ready collecting each cycle's key_averages(), record_shapes and profile_memory,
torch.profiler.record_function labels around the forward, the loss and the optimizer step,
prof.step() once per iteration; afterwards the averages are looked up by label
(FunctionEventAvg.key / count / cpu_time_total), key_averages(group_by_input_shape=True) and
table(sort_by="cpu_time_total", row_limit=5) are built, and the model keeps training outside
the profiler so its losses are checked as usual."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function, schedule


def make_model():
    return nn.Sequential(
        nn.Linear(16, 64),
        nn.GELU(),
        nn.LayerNorm(64),
        nn.Linear(64, 64),
        nn.SiLU(),
        nn.Linear(64, 3),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)

    x = torch.randn(512, 16)
    w = torch.randn(16, 3)
    y = (x @ w + 0.1 * torch.randn(512, 3)).argmax(1)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cycles = []

    def trace_handler(p):
        cycles.append(p.key_averages())

    def train_step(i):
        xb, yb = x[(i * 64) % 512 :][:64], y[(i * 64) % 512 :][:64]
        with record_function("forward"):
            logits = model(xb)
        with record_function("loss"):
            loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with record_function("optimizer_step"):
            opt.step()
        return loss

    with profile(
        activities=[ProfilerActivity.CPU],
        schedule=schedule(wait=1, warmup=1, active=2, repeat=1),
        on_trace_ready=trace_handler,
        record_shapes=True,
        profile_memory=True,
    ) as prof:
        for i in range(6):
            loss = train_step(i)
            print(f"profiled step {i}: loss {loss.item():.5f}")
            prof.step()

    print(f"trace cycles: {len(cycles)}")
    averages = cycles[0]
    labels = {e.key: e for e in averages if e.key in ("forward", "loss", "optimizer_step")}
    print("labels:", sorted(labels), "counts:", [labels[k].count for k in sorted(labels)])
    assert all(labels[k].cpu_time_total >= 0 for k in labels)
    table = averages.table(sort_by="cpu_time_total", row_limit=5)
    print(f"table has rows: {len(table.splitlines()) > 5}")
    by_shape = prof.key_averages(group_by_input_shape=True)
    print(f"grouped by shape: {len(by_shape) >= len(labels)}")

    for i in range(6, args.steps):
        loss = train_step(i)
        print(f"step {i}: loss {loss.item():.5f}")
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean()
        full = F.cross_entropy(model(x), y)
    print(f"final loss {full.item():.5f} acc {acc.item():.3f}")


if __name__ == "__main__":
    main()

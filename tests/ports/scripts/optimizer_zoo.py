"""A benchmark sweep of the kind optimizer papers run: one small regression network trained
from the same initial weights by each of torch.optim's optimizers with their less common
options (Adadelta, Adamax, NAdam with momentum decay and decoupled weight decay, RAdam
decoupled, Adagrad with lr_decay, ASGD's averaging, SGD with dampening, AdamW amsgrad,
Adam maximize on a negated loss, RMSprop centered with momentum, Rprop, LBFGS with
strong-Wolfe line search), each under a different scheduler (PolynomialLR, CyclicLR with
momentum cycling, OneCycleLR, CosineAnnealingWarmRestarts, MultiStepLR, LambdaLR,
ConstantLR), plus per-group options and state_dict round trips mid-run."""

import argparse
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=24)
args = p.parse_args()
torch.manual_seed(0)

x = torch.randn(96, 5)
y = torch.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] * x[:, 2:3] + 0.1 * torch.randn(96, 1)


def make_model():
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.ELU(), nn.Linear(16, 1))


base = make_model()
opt0 = torch.optim.SGD(base.parameters(), lr=0.0)  # the initial weights all runs start from


def groups(model, **extra):
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    rest = [p for n, p in model.named_parameters() if not n.endswith("weight")]
    return [{"params": decay, **extra}, {"params": rest, "weight_decay": 0.0}]


CONFIGS = {
    "adadelta": (
        lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.95, weight_decay=1e-4),
        lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=20, power=2.0),
    ),
    "adamax": (
        lambda m: torch.optim.Adamax(groups(m, weight_decay=1e-3), lr=0.02),
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[8, 16], gamma=0.5),
    ),
    "nadam": (
        lambda m: torch.optim.NAdam(
            m.parameters(),
            lr=0.01,
            momentum_decay=3e-3,
            weight_decay=1e-2,
            decoupled_weight_decay=True,
        ),
        lambda o: torch.optim.lr_scheduler.ConstantLR(o, factor=0.5, total_iters=6),
    ),
    "radam": (
        lambda m: torch.optim.RAdam(
            m.parameters(), lr=0.01, weight_decay=1e-2, decoupled_weight_decay=True
        ),
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda s: 1.0 / (1 + 0.1 * s)),
    ),
    "adagrad": (
        lambda m: torch.optim.Adagrad(
            m.parameters(), lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1
        ),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
    ),
    "asgd": (
        lambda m: torch.optim.ASGD(m.parameters(), lr=0.05, t0=5, lambd=1e-3),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5),
    ),
    "sgd": (
        lambda m: torch.optim.SGD(
            groups(m, lr=0.05), lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-4
        ),
        lambda o: torch.optim.lr_scheduler.CyclicLR(
            o, base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2", cycle_momentum=True
        ),
    ),
    "adamw_amsgrad": (
        lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, amsgrad=True),
        lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.02, total_steps=args.steps),
    ),
    "adam_maximize": (
        lambda m: torch.optim.Adam(m.parameters(), lr=0.01, maximize=True),
        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.97),
    ),
    "rmsprop": (
        lambda m: torch.optim.RMSprop(
            m.parameters(), lr=0.005, alpha=0.9, centered=True, momentum=0.5
        ),
        lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=30, power=1.0),
    ),
    "rprop": (lambda m: torch.optim.Rprop(m.parameters(), lr=0.005), None),
}

for name, (make_opt, make_sched) in CONFIGS.items():
    model = copy.deepcopy(base)
    opt = make_opt(model)
    sched = make_sched(opt) if make_sched else None
    sign = -1.0 if name == "adam_maximize" else 1.0
    for step in range(args.steps):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        (sign * loss).backward()
        opt.step()
        if sched is not None:
            sched.step()
        if step == args.steps // 2:  # a state-dict round trip, as a resumed run does
            state = copy.deepcopy(opt.state_dict())
            opt = make_opt(model)
            opt.load_state_dict(state)
            if sched is not None:
                sstate = sched.state_dict()
                sched = make_sched(opt)
                sched.load_state_dict(sstate)
    with torch.no_grad():
        final = F.mse_loss(model(x), y).item()
    lr = opt.param_groups[0]["lr"]
    extra = ""
    if name == "asgd":
        extra = f" ax {sum(s['ax'].abs().sum().item() for s in opt.state.values()):.4f}"
    if name == "sgd":
        extra = f" momentum {opt.param_groups[0]['momentum']:.4f}"
    print(f"{name}: final loss {final:.6f} lr {lr:.6f}{extra}")

# LBFGS with a strong-Wolfe line search and a closure
model = copy.deepcopy(base)
opt = torch.optim.LBFGS(
    model.parameters(), lr=1, max_iter=8, history_size=5, line_search_fn="strong_wolfe"
)


def closure():
    opt.zero_grad()
    loss = F.mse_loss(model(x), y)
    loss.backward()
    return loss


for step in range(3):
    loss = opt.step(closure)
    print(
        f"lbfgs step {step} loss {loss.item():.6f} evals {opt.state[opt._params[0]]['func_evals']}"
    )

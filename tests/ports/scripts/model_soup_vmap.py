"""Model soups (Wortsman et al., 2022) from an ensemble trained in one vectorised step, after
the torch.func ensembling tutorial: several copies of an MLP built with
torch.nn.utils.skip_init (then initialised in place), their parameters and buffers stacked by
torch.func.stack_module_state, a "meta"-device base model (copy.deepcopy(...).to("meta"))
called through torch.func.functional_call inside torch.func.vmap (in_dims=(0, 0, None): the
same batch for every member), the ensemble's loss summed over members and trained with one
Adam on the stacked tensors; then the members are unstacked into state dicts, averaged into
a uniform soup and a greedy soup (members added while the held-out loss does not rise),
loaded with load_state_dict, evaluated with torch.nn.utils.stateless.functional_call, and
compared through torch.nn.utils.parameters_to_vector distances."""

import argparse
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap


class MLP(nn.Module):
    def __init__(self, d_in=8, hidden=32, classes=3):
        super().__init__()
        self.fc1 = torch.nn.utils.skip_init(nn.Linear, d_in, hidden)
        self.fc2 = torch.nn.utils.skip_init(nn.Linear, hidden, classes)
        with torch.no_grad():
            for fc in (self.fc1, self.fc2):
                nn.init.kaiming_uniform_(fc.weight, a=5**0.5)
                nn.init.zeros_(fc.bias)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)

    n, d = 384, 8
    w = torch.randn(d, 3)
    x = torch.randn(n, d)
    y = (x @ w + 0.5 * torch.randn(n, 3)).argmax(1)
    xtr, ytr, xval, yval = x[:256], y[:256], x[256:], y[256:]

    # a shared starting point with small per-member perturbations, as soups fine-tune one model
    base = MLP()
    models = [copy.deepcopy(base) for _ in range(args.members)]
    with torch.no_grad():
        for i, m in enumerate(models):
            for p in m.parameters():
                p.add_(0.02 * (i + 1) * torch.randn_like(p))
    params, buffers = stack_module_state(models)
    print(f"stacked: {sorted((k, tuple(v.shape)) for k, v in params.items())}")
    meta = copy.deepcopy(models[0]).to("meta")

    def fmodel(p, b, xb):
        return functional_call(meta, (p, b), (xb,))

    ensemble = vmap(fmodel, in_dims=(0, 0, None))
    opt = torch.optim.Adam(
        list(params.values()), lr=1e-2 * torch.linspace(0.5, 1.5, args.members).mean().item()
    )
    for epoch in range(args.epochs):
        for i in range(0, 256, 32):
            logits = ensemble(params, buffers, xtr[i : i + 32])  # (M, B, C)
            loss = F.cross_entropy(logits.flatten(0, 1), ytr[i : i + 32].repeat(args.members))
            opt.zero_grad()
            (loss * args.members).backward()
            opt.step()
        with torch.no_grad():
            vl = [F.cross_entropy(lg, yval).item() for lg in ensemble(params, buffers, xval)]
        print(
            f"epoch {epoch}: ensemble loss {loss.item():.5f} member val losses {' '.join(f'{v:.4f}' for v in vl)}"
        )

    states = [{k: v[i].detach().clone() for k, v in params.items()} for i in range(args.members)]

    def evaluate(state):
        model = MLP()
        model.load_state_dict(state)
        with torch.no_grad():
            return F.cross_entropy(
                torch.nn.utils.stateless.functional_call(model, state, (xval,)), yval
            ).item()

    member_losses = [evaluate(s) for s in states]
    uniform = {k: torch.stack([s[k] for s in states]).mean(0) for k in states[0]}
    print(f"uniform soup val loss {evaluate(uniform):.5f}")
    order = sorted(range(args.members), key=lambda i: member_losses[i])
    soup, best = [states[order[0]]], member_losses[order[0]]
    for i in order[1:]:
        candidate = {k: torch.stack([s[k] for s in soup + [states[i]]]).mean(0) for k in uniform}
        loss = evaluate(candidate)
        if loss <= best:
            soup.append(states[i])
            best = loss
    print(f"greedy soup val loss {best:.5f} with {len(soup)} members")
    vecs = []
    for s in states:
        m = MLP()
        m.load_state_dict(s)
        vecs.append(torch.nn.utils.parameters_to_vector(m.parameters()))
    dist = torch.cdist(torch.stack(vecs), torch.stack(vecs))
    print(f"mean pairwise distance {dist.sum().item() / (args.members * (args.members - 1)):.5f}")


if __name__ == "__main__":
    main()

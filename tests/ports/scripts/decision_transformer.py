"""A Decision Transformer (Chen et al., 2021) in the style of the public minGPT-based code:
offline trajectories of a small grid-walk environment, returns-to-go computed by
torch.flip(torch.cumsum(torch.flip(...))), one token each for return, state and action
interleaved by torch.stack(..., dim=2).reshape, a learnt timestep embedding added to all
three, GPT blocks with a causal mask buffer (register_buffer(persistent=False)) and
masked_fill, and a head that predicts the action from each state token. The optimizer is set
up the minGPT way: AdamW parameter groups with and without weight decay chosen by walking
named_modules(), a linear-warmup cosine LambdaLR, and clip_grad_norm_. Halfway through, the
model, optimizer and scheduler are checkpointed to an io.BytesIO with torch.save and restored
into fresh objects with torch.load. Evaluation conditions on a target return and rolls the
policy out under torch.inference_mode."""

import argparse
import io
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

N_STATES, N_ACTIONS, HORIZON = 10, 3, 8


def env_step(state, action):
    # a ring of states: 0 = stay, 1 = forward, 2 = back; reward for landing on state 7
    nxt = (state + torch.tensor([0, 1, -1])[action]) % N_STATES
    return nxt, (nxt == 7).float()


def trajectories(n):
    states = torch.zeros(n, HORIZON, dtype=torch.long)
    actions = torch.zeros(n, HORIZON, dtype=torch.long)
    rewards = torch.zeros(n, HORIZON)
    s = torch.randint(0, N_STATES, (n,))
    for t in range(HORIZON):
        a = torch.randint(0, N_ACTIONS, (n,))
        states[:, t], actions[:, t] = s, a
        s, rewards[:, t] = env_step(s, a)
    rtg = torch.flip(torch.cumsum(torch.flip(rewards, [1]), 1), [1])
    return states, actions, rtg


class Block(nn.Module):
    def __init__(self, d, heads, max_tokens):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.heads = heads
        mask = torch.tril(torch.ones(max_tokens, max_tokens, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, max_tokens, max_tokens), persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf")).softmax(-1)
        x = x + self.proj((att @ v).transpose(1, 2).contiguous().view(b, t, d))
        return x + self.mlp(self.ln2(x))


class DecisionTransformer(nn.Module):
    def __init__(self, d=32, heads=2, layers=2):
        super().__init__()
        self.embed_timestep = nn.Embedding(HORIZON, d)
        self.embed_return = nn.Linear(1, d)
        self.embed_state = nn.Embedding(N_STATES, d)
        self.embed_action = nn.Embedding(N_ACTIONS, d)
        self.embed_ln = nn.LayerNorm(d)
        self.blocks = nn.ModuleList([Block(d, heads, 3 * HORIZON) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.predict_action = nn.Linear(d, N_ACTIONS)

    def forward(self, rtg, states, actions):
        b, t = states.shape
        time = self.embed_timestep(torch.arange(t)).unsqueeze(0)
        tokens = torch.stack(
            [self.embed_return(rtg.unsqueeze(-1)) + time, self.embed_state(states) + time,
             self.embed_action(actions) + time], dim=2,
        ).reshape(b, 3 * t, -1)  # fmt: skip
        x = self.embed_ln(tokens)
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x).reshape(b, t, 3, -1)
        return self.predict_action(x[:, :, 1])  # predict a_t from the s_t token


def configure_optimizer(model, lr, weight_decay):
    decay, no_decay = set(), set()
    for mn, m in model.named_modules():
        for pn, _ in m.named_parameters(recurse=False):
            fpn = f"{mn}.{pn}" if mn else pn
            if pn.endswith("bias") or isinstance(m, (nn.LayerNorm, nn.Embedding)):
                no_decay.add(fpn)
            elif pn.endswith("weight") and isinstance(m, nn.Linear):
                decay.add(fpn)
    params = dict(model.named_parameters())
    assert not decay & no_decay and decay | no_decay == params.keys()
    groups = [
        {"params": [params[n] for n in sorted(decay)], "weight_decay": weight_decay},
        {"params": [params[n] for n in sorted(no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def warmup_cosine(warmup, total):
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    return f


def rollout(model, target_return, n=32):
    s = torch.arange(n) % N_STATES
    rtg = torch.full((n, 1), float(target_return))
    states, actions = s[:, None], torch.zeros(n, 1, dtype=torch.long)
    total = torch.zeros(n)
    with torch.inference_mode():
        for t in range(HORIZON):
            a = model(rtg, states, actions)[:, -1].argmax(-1)
            actions[:, -1] = a
            s, r = env_step(s, a)
            total += r
            if t + 1 < HORIZON:
                rtg = torch.cat([rtg, rtg[:, -1:] - r[:, None]], 1)
                states = torch.cat([states, s[:, None]], 1)
                actions = torch.cat([actions, torch.zeros(n, 1, dtype=torch.long)], 1)
    return total.mean().item()


def main():
    parser = argparse.ArgumentParser(description="Decision Transformer")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    torch.manual_seed(0)
    states, actions, rtg = trajectories(256)
    steps_per_epoch = len(states) // args.batch
    total_steps = args.epochs * steps_per_epoch

    def build():
        model = DecisionTransformer()
        opt = configure_optimizer(model, 3e-3, 0.1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(4, total_steps))
        return model, opt, sched

    model, opt, sched = build()
    for epoch in range(args.epochs):
        if epoch == args.epochs // 2:
            buffer = io.BytesIO()
            torch.save(
                {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()},
                buffer,
            )
            buffer.seek(0)
            ckpt = torch.load(buffer)
            model, opt, sched = build()
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["opt"])
            sched.load_state_dict(ckpt["sched"])
        model.train()
        total = 0.0
        for i in range(0, len(states), args.batch):
            sl = slice(i, i + args.batch)
            logits = model(rtg[sl], states[sl], actions[sl])
            loss = F.cross_entropy(logits.reshape(-1, N_ACTIONS), actions[sl].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        model.eval()
        achieved = rollout(model, 3.0)
        print(
            f"epoch {epoch} action loss {total / steps_per_epoch:.6f} lr {sched.get_last_lr()[0]:.6f} "
            f"return gap loss {3.0 - achieved:.6f}"
        )


if __name__ == "__main__":
    main()

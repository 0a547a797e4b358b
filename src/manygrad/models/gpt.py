"""Character-level GPT (Radford et al., "Language Models are Unsupervised Multitask
Learners", 2019), laid out like a minimal nanoGPT so that weight names match it:
``transformer.wte``, ``transformer.wpe``, ``transformer.h.0.ln_1``,
``transformer.h.0.attn.c_attn``, ``transformer.h.0.attn.c_proj``, ``transformer.h.0.ln_2``,
``transformer.h.0.mlp.c_fc``, ``transformer.h.0.mlp.c_proj``, ``transformer.ln_f``,
``lm_head``.
"""

from __future__ import annotations

from .. import nn
from ..ops.attention import _packed_causal_attention


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and the past."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"GPT: n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.n_head = n_head
        self.dropout = dropout

    def forward(self, x):
        b, t, c = x.shape
        # NOTE: (B * T, C) rows make each projection one large GEMM; the packed attention
        # splits q, k, v and the heads itself, as scaled_dot_product_attention(q, k, v,
        # is_causal=True) on (B, H, T, C / H) views would
        qkv = self.c_attn(x.reshape(b * t, c))
        p = self.dropout if self.training else 0.0
        y = _packed_causal_attention(qkv, b, self.n_head, dropout_p=p)
        return self.resid_dropout(self.c_proj(y)).reshape(b, t, c)


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(4x) - GELU - Linear."""

    def __init__(self, n_embd: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        rows = x.reshape(-1, x.shape[-1])  # one GEMM per projection
        return self.dropout(self.c_proj(self.gelu(self.c_fc(rows)))).reshape(x.shape)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer over characters; returns logits ``(B, T, vocab_size)``.

    Args:
        vocab_size: number of distinct tokens (default 65, tiny-Shakespeare's characters).
        block_size: longest context in tokens (default 64).
        n_layer: transformer blocks (default 2).
        n_head: attention heads (default 4).
        n_embd: embedding width (default 128).
        dropout: dropout probability (default 0.0).
        bias: biases in Linear layers (default True).

    Example:
        >>> model = GPT(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=16)
        >>> model(mg.randint(0, 10, (2, 8))).shape
        manygrad.Size([2, 8, 10])
    """

    def __init__(
        self,
        vocab_size: int = 65,
        block_size: int = 64,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.block_size = block_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, n_embd),
                wpe=nn.Embedding(block_size, n_embd),
                drop=nn.Dropout(dropout),
                h=nn.ModuleList([Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)]),
                ln_f=nn.LayerNorm(n_embd),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx):
        from .. import arange

        b, t = idx.shape
        if t > self.block_size:
            raise ValueError(
                f"GPT: sequence of length {t} is longer than block_size {self.block_size}; "
                "crop the input or build the model with a larger block_size"
            )
        pos = arange(t, device=idx.device)
        x = self.transformer["drop"](self.transformer["wte"](idx) + self.transformer["wpe"](pos))
        for block in self.transformer["h"]:
            x = block(x)
        x = self.transformer["ln_f"](x).reshape(b * t, x.shape[-1])
        return self.lm_head(x).reshape(b, t, -1)


def generate(model: GPT, idx, max_new_tokens: int, temperature: float = 1.0, top_k=None, seed=0):
    """Extend token sequences ``idx`` ``(B, T)`` by sampling ``max_new_tokens`` more.

    Args:
        model: a :class:`GPT` (put in eval mode by the caller).
        idx: int64 tensor of token ids, ``(B, T)``.
        max_new_tokens: tokens to add.
        temperature: divides the logits (default 1.0; lower is greedier).
        top_k: sample only among the k most likely tokens (default: all).
        seed: seed of the sampling (default 0).

    Example:
        >>> out = generate(model, mg.tensor([[0, 1, 2]]), 20, temperature=0.8)
    """
    import numpy as np

    from .. import no_grad, tensor

    rng = np.random.default_rng(seed)
    toks = np.array(idx.cpu().numpy(), dtype=np.int64)
    with no_grad():
        for _ in range(max_new_tokens):
            ctx = tensor(toks[:, -model.block_size :], device=idx.device)
            logits = model(ctx)[:, -1, :].float().cpu().numpy().astype(np.float64)
            logits = logits / max(temperature, 1e-6)
            if top_k is not None and top_k < logits.shape[-1]:
                kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
                logits = np.where(logits < kth, -np.inf, logits)
            p = np.exp(logits - logits.max(axis=-1, keepdims=True))
            p /= p.sum(axis=-1, keepdims=True)
            nxt = np.array([rng.choice(p.shape[-1], p=row) for row in p])
            toks = np.concatenate([toks, nxt[:, None]], axis=1)
    return tensor(toks, device=idx.device)

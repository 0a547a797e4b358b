"""CLIP (Radford et al., 2021) in the manner of OpenAI's model.py and open_clip's training loop,
on synthetic coloured shapes and their captions: a small ViT image tower (patchify Conv2d, a
class token, pre-norm nn.TransformerEncoder with batch_first), a text tower (token embedding, a
causal mask built with triu_, features taken at the end-of-text token found by argmax), a
learnable logit scale clamped through .data, the symmetric InfoNCE loss, AdamW without weight
decay on gains, biases and the scale (named_parameters), a warmup + cosine learning rate, and
bfloat16 autocast on the CPU; then zero-shot classification from prompts."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["disc", "square", "bar", "cross"]
RGB = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=np.float32)
# token ids: 0 pad, colours 1-4, shapes 5-8, then the filler words, start and end of text
WORDS = {w: i + 1 for i, w in enumerate(COLORS + SHAPES)}
WORDS.update({"a": 9, "photo": 10, "of": 11, "small": 12, "big": 13})
SOT, EOT, VOCAB, CONTEXT = 14, 15, 16, 10


def tokenize(words):
    ids = [SOT] + [WORDS[w] for w in words] + [EOT]
    return ids + [0] * (CONTEXT - len(ids))


class LayerNorm(nn.LayerNorm):
    """LayerNorm that computes in float32 and returns the input's dtype (as CLIP's)."""

    def forward(self, x):
        orig_type = x.dtype
        ret = super().forward(x.type(torch.float32))
        return ret.type(orig_type)


def transformer(width, layers, heads):
    layer = nn.TransformerEncoderLayer(
        width, heads, dim_feedforward=width * 4, dropout=0.0, activation="gelu",
        batch_first=True, norm_first=True,
    )  # fmt: skip
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class VisionTransformer(nn.Module):
    def __init__(self, input_resolution, patch_size, width, layers, heads, output_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        n_patches = (input_resolution // patch_size) ** 2
        self.positional_embedding = nn.Parameter(scale * torch.randn(n_patches + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x):
        x = self.conv1(x)  # (B, width, grid, grid)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(
            x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device
        )
        x = torch.cat([cls, x], dim=1)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    def __init__(self, embed_dim=16, image_resolution=16, patch=4, width=32, layers=2, heads=4):
        super().__init__()
        self.context_length = CONTEXT
        self.visual = VisionTransformer(image_resolution, patch, width, layers, heads, embed_dim)
        self.transformer = transformer(width, layers, heads)
        self.token_embedding = nn.Embedding(VOCAB, width)
        self.positional_embedding = nn.Parameter(torch.empty(CONTEXT, width))
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * np.log(1 / 0.07))
        self.register_buffer("attn_mask", self.build_attention_mask(), persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width**-0.5)

    def build_attention_mask(self):
        # additive causal mask: -inf strictly above the diagonal
        mask = torch.empty(self.context_length, self.context_length)
        mask.fill_(float("-inf"))
        mask.triu_(1)
        return mask

    def encode_image(self, image):
        return self.visual(image)

    def encode_text(self, text):
        x = self.token_embedding(text)
        x = x + self.positional_embedding.to(x.dtype)
        x = self.transformer(x, mask=self.attn_mask)
        x = self.ln_final(x)
        # features at the end-of-text token (the largest id in each sequence)
        return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection

    def forward(self, image, text):
        image_features = F.normalize(self.encode_image(image), dim=-1)
        text_features = F.normalize(self.encode_text(text), dim=-1)
        return image_features, text_features, self.logit_scale.exp()


def clip_loss(image_features, text_features, logit_scale):
    logits_per_image = logit_scale * image_features @ text_features.T
    logits_per_text = logit_scale * text_features @ image_features.T
    labels = torch.arange(logits_per_image.shape[0], dtype=torch.long)
    return (
        F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)
    ) / 2


def make_pairs(rng, n, size=16):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    texts, labels = [], []
    for i in range(n):
        color, shape, big = rng.integers(0, 4), rng.integers(0, 4), rng.random() < 0.5
        cy, cx = rng.uniform(6, 10, 2)
        r = rng.uniform(4.0, 5.5) if big else rng.uniform(2.0, 3.0)
        dy, dx = abs(yy - cy), abs(xx - cx)
        mask = [dy**2 + dx**2 < r * r, np.maximum(dy, dx) < r, (dy < r / 3) & (dx < r),
                ((dy < r / 3) & (dx < r)) | ((dx < r / 3) & (dy < r))][shape]  # fmt: skip
        img = 0.1 * rng.standard_normal((3, size, size)).astype(np.float32)
        images[i] = img + mask[None] * RGB[color][:, None, None]
        words = [COLORS[color], SHAPES[shape]]
        if rng.random() < 0.5:
            words.insert(0, "big" if big else "small")
        if rng.random() < 0.5:
            words = ["a", "photo", "of", "a"] + words
        texts.append(tokenize(words))
        labels.append(4 * color + shape)
    return torch.from_numpy(images), torch.tensor(texts), torch.tensor(labels)


def param_groups(model, weight_decay):
    def exclude(n, p):
        return p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n

    named = list(model.named_parameters())
    gain_or_bias = [p for n, p in named if exclude(n, p) and p.requires_grad]
    rest = [p for n, p in named if not exclude(n, p) and p.requires_grad]
    return [
        {"params": gain_or_bias, "weight_decay": 0.0},
        {"params": rest, "weight_decay": weight_decay},
    ]


def cosine_lr(optimizer, base_lr, warmup, steps):
    def adjust(step):
        if step < warmup:
            lr = base_lr * (step + 1) / warmup
        else:
            e, es = step - warmup, steps - warmup
            lr = 0.5 * (1 + math.cos(math.pi * e / es)) * base_lr
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    return adjust


def main():
    parser = argparse.ArgumentParser(description="CLIP on synthetic captioned shapes")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--wd", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--precision", choices=["amp_bf16", "fp32"], default="amp_bf16")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images, texts, _ = make_pairs(rng, 256)
    test_images, _, test_labels = make_pairs(rng, 64)
    model = CLIP()
    groups = param_groups(model, args.wd)
    print(f"no-decay tensors {len(groups[0]['params'])} decay tensors {len(groups[1]['params'])}")
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    steps_per_epoch = len(images) // args.batch_size
    scheduler = cosine_lr(optimizer, args.lr, args.warmup, args.epochs * steps_per_epoch)
    amp = args.precision == "amp_bf16"

    step = 0
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(images), args.batch_size):
            lr = scheduler(step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                image_features, text_features, logit_scale = model(
                    images[i : i + args.batch_size], texts[i : i + args.batch_size]
                )
                loss = clip_loss(image_features, text_features, logit_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            # as CLIP: the temperature never exceeds 100
            model.logit_scale.data.clamp_(0, math.log(100))
            total += loss.item()
            step += 1
        print(
            f"epoch {epoch} loss: {total / steps_per_epoch:.5f} lr {lr:.2e} "
            f"logit scale {model.logit_scale.exp().item():.4f}"
        )

    model.eval()
    prompts = torch.tensor(
        [tokenize(["a", "photo", "of", "a", c, s]) for c in COLORS for s in SHAPES]
    )
    with torch.no_grad():  # evaluation in float32
        text_features = F.normalize(model.encode_text(prompts), dim=-1)
        image_features = F.normalize(model.encode_image(test_images), dim=-1)
        logits = 100.0 * image_features @ text_features.T
    zero_shot_loss = F.cross_entropy(logits, test_labels)
    acc = (logits.argmax(dim=-1) == test_labels).float().mean()
    print(f"zero-shot loss: {zero_shot_loss.item():.5f} accuracy {acc.item():.3f}")


if __name__ == "__main__":
    main()

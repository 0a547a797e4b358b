"""PixelCNN (van den Oord et al., 2016) in the manner of the popular pixel-cnn-pytorch repos, on
synthetic 8x8 grey-level images with 256 intensity levels: masked convolutions of type A (the
first layer: a pixel does not see itself) and type B (later layers) whose mask is a registered
buffer, applied either inside forward (F.conv2d with weight * mask) or by a forward pre-hook that
zeroes the masked weights in place, or a parametrization (nn.utils.parametrize); residual blocks
of 1x1 / masked 3x3 / 1x1 convolutions with BatchNorm2d, a discretized 256-way softmax over each
pixel trained with F.cross_entropy on (N, 256, H, W) logits (bits per dimension), a checkpoint
round trip through torch.save/torch.load on an io.BytesIO (the masks travel as buffers), and one
autoregressive sampling pass, pixel by pixel, with torch.multinomial."""

import argparse
import io
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from torch.utils.data import DataLoader, TensorDataset


class Mask(nn.Module):
    """A parametrization: the weight seen by the layer is the stored one times the mask."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, weight):
        return weight * self.mask


class MaskedConv2d(nn.Conv2d):
    """A convolution that only looks at pixels above, and to the left on the same row.

    Type 'A' also hides the centre pixel (used by the first layer, which sees the raw input)."""

    def __init__(self, mask_type, *args, mask_mode="forward", **kwargs):
        super().__init__(*args, **kwargs)
        assert mask_type in ("A", "B")
        self.register_buffer("mask", torch.ones_like(self.weight))
        _, _, kh, kw = self.weight.size()
        self.mask[:, :, kh // 2, kw // 2 + (mask_type == "B") :] = 0
        self.mask[:, :, kh // 2 + 1 :] = 0
        self.mask_mode = mask_mode
        if mask_mode == "hook":
            self.register_forward_pre_hook(self._apply_mask)
        elif mask_mode == "parametrize":
            parametrize.register_parametrization(self, "weight", Mask(self.mask))

    @staticmethod
    def _apply_mask(module, inputs):
        module.weight.data *= module.mask

    def forward(self, x):
        if self.mask_mode in ("hook", "parametrize"):
            return super().forward(x)
        return F.conv2d(x, self.weight * self.mask, self.bias, self.stride, self.padding)


class ResidualBlock(nn.Module):
    def __init__(self, h, mask_mode):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(2 * h, h, 1, bias=False),
            nn.BatchNorm2d(h),
            nn.ReLU(),
            MaskedConv2d("B", h, h, 3, padding=1, bias=False, mask_mode=mask_mode),
            nn.BatchNorm2d(h),
            nn.ReLU(),
            nn.Conv2d(h, 2 * h, 1, bias=False),
            nn.BatchNorm2d(2 * h),
        )

    def forward(self, x):
        return x + self.net(x)


class PixelCNN(nn.Module):
    def __init__(self, h=16, n_blocks=3, levels=256, mask_mode="forward"):
        super().__init__()
        self.levels = levels
        self.input_conv = MaskedConv2d("A", 1, 2 * h, 5, padding=2, mask_mode=mask_mode)
        self.blocks = nn.Sequential(*[ResidualBlock(h, mask_mode) for _ in range(n_blocks)])
        self.output = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d("B", 2 * h, 32, 1, mask_mode=mask_mode),
            nn.ReLU(),
            nn.Conv2d(32, levels, 1),
        )

    def forward(self, x):
        # pixel intensities 0..255 -> [-1, 1]
        x = x.float() / (self.levels - 1) * 2 - 1
        return self.output(self.blocks(self.input_conv(x)))

    @torch.no_grad()
    def sample(self, n, size, temperature=1.0):
        samples = torch.zeros(n, 1, size, size, dtype=torch.long)
        for i in range(size):
            for j in range(size):
                logits = self(samples)[:, :, i, j] / temperature
                probs = F.softmax(logits, dim=1)
                samples[:, 0, i, j] = torch.multinomial(probs, 1).squeeze(-1)
        return samples


def make_images(rng, n, size=8, levels=256):
    """Soft diagonal gradients and a bright blob, quantized to 256 levels."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    images = np.empty((n, 1, size, size), dtype=np.int64)
    for k in range(n):
        a, b = rng.uniform(-1, 1, 2)
        cy, cx = rng.uniform(0.2, 0.8, 2)
        img = 0.5 + 0.25 * (a * xx + b * yy) + 0.4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) * 12)
        img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
        images[k, 0] = np.round(img * (levels - 1)).astype(np.int64)
    return torch.from_numpy(images)


def main():
    parser = argparse.ArgumentParser(description="PixelCNN on synthetic 8x8 images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--mask-mode", choices=["forward", "hook", "parametrize"], default="forward"
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train = TensorDataset(make_images(rng, 192))
    test = make_images(rng, 64)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)

    model = PixelCNN(mask_mode=args.mask_mode)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    for epoch in range(args.epochs):
        model.train()
        total, count = 0.0, 0
        for (x,) in loader:
            logits = model(x)  # (N, 256, 1, H, W) flattened to (N, 256, H, W)
            loss = F.cross_entropy(logits, x[:, 0])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            total += loss.item() * x.size(0)
            count += x.size(0)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            test_nll = F.cross_entropy(model(test), test[:, 0]).item()
        print(
            f"epoch {epoch} train loss: {total / count:.6f} test loss: {test_nll:.6f} "
            f"bits/dim {test_nll / math.log(2):.4f} lr {scheduler.get_last_lr()[0]:.5f}"
        )

    # the masks really hide the future: the logits at a pixel do not depend on later pixels
    x = test[:2].clone().float().requires_grad_()
    out = model.output(model.blocks(model.input_conv(x / 255 * 2 - 1)))
    out[:, :, 3, 4].sum().backward()
    leak = x.grad[:, :, 3, 4:].abs().sum() + x.grad[:, :, 4:].abs().sum()
    print(f"gradient leak into the future {leak.item():.6f}")
    if args.mask_mode == "hook":
        hidden = sum(
            (m.weight * (1 - m.mask)).abs().sum().item()
            for m in model.modules()
            if isinstance(m, MaskedConv2d)
        )
        print(f"masked weights left {hidden:.6f}")

    # a checkpoint round trip: the masks are buffers, so they travel in the state dict
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    restored = PixelCNN(mask_mode=args.mask_mode)
    restored.load_state_dict(checkpoint["model"])
    restored.eval()
    masks = [k for k in checkpoint["model"] if k.endswith("mask")]
    with torch.no_grad():
        restored_nll = F.cross_entropy(restored(test), test[:, 0]).item()
    print(f"restored test loss: {restored_nll:.6f} mask buffers {len(masks)}")

    samples = model.sample(4, 8)
    with torch.no_grad():
        sample_nll = F.cross_entropy(model(samples), samples[:, 0])
    print(
        f"sample loss: {sample_nll.item():.6f} mean intensity {samples.float().mean().item():.2f}"
    )


if __name__ == "__main__":
    main()

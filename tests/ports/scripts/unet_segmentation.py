"""Binary segmentation with a small U-Net (Ronneberger et al., 2015) on synthetic images of
ellipses and rectangles, in the style of the popular PyTorch U-Net repositories: bilinear
upsampling by F.interpolate(align_corners=False), F.pad to fix the odd-sized skip connection,
BCEWithLogitsLoss plus a soft Dice loss, SGD with Nesterov momentum, gradient clipping by value,
ReduceLROnPlateau on the validation Dice loss."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, Dataset


class DoubleConv(nn.Module):
    """(conv => BN => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        mid_channels = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, x1, x2):
        x1 = F.interpolate(x1, scale_factor=2, mode="bilinear", align_corners=False)
        # input is CHW; pad x1 up to the skip connection's size when pooling rounded down
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet(nn.Module):
    def __init__(self, n_channels=1, n_classes=1, base=8):
        super().__init__()
        self.inc = DoubleConv(n_channels, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.down3 = Down(base * 4, base * 4)
        self.up1 = Up(base * 8, base * 2)
        self.up2 = Up(base * 4, base)
        self.up3 = Up(base * 2, base)
        self.outc = nn.Conv2d(base, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)  # 28x28
        x2 = self.down1(x1)  # 14x14
        x3 = self.down2(x2)  # 7x7
        x4 = self.down3(x3)  # 3x3: upsampled to 6x6, then padded to 7x7
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)


class ShapesDataset(Dataset):
    def __init__(self, n, size=28, seed=0):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size]
        self.images = np.empty((n, 1, size, size), np.float32)
        self.masks = np.zeros((n, 1, size, size), np.float32)
        for i in range(n):
            for _ in range(rng.integers(1, 3)):
                cy, cx = rng.uniform(5, size - 5, 2)
                ry, rx = rng.uniform(2.5, 6, 2)
                if rng.random() < 0.5:
                    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
                else:
                    inside = (np.abs(yy - cy) <= ry) & (np.abs(xx - cx) <= rx)
                self.masks[i, 0][inside] = 1.0
            background = 0.3 * np.sin(xx / rng.uniform(2, 5) + rng.uniform(0, 6))
            noise = 0.4 * rng.standard_normal((size, size))
            self.images[i, 0] = self.masks[i, 0] + background + noise

    def __len__(self):
        return len(self.images)

    def __getitem__(self, idx):
        return {
            "image": torch.from_numpy(self.images[idx]),
            "mask": torch.from_numpy(self.masks[idx]),
        }


def dice_coeff(probs, target, epsilon=1e-6):
    """Soft Dice over each image, averaged over the batch."""
    inter = 2 * (probs * target).sum(dim=(-1, -2))
    sets_sum = probs.sum(dim=(-1, -2)) + target.sum(dim=(-1, -2))
    sets_sum = torch.where(sets_sum == 0, inter, sets_sum)
    return ((inter + epsilon) / (sets_sum + epsilon)).mean()


def dice_loss(logits, target):
    return 1 - dice_coeff(torch.sigmoid(logits).squeeze(1), target.squeeze(1))


@torch.no_grad()
def evaluate(model, loader):
    model.eval()
    total, n = 0.0, 0
    for batch in loader:
        logits = model(batch["image"])
        total += dice_loss(logits, batch["mask"]).item() * len(logits)
        n += len(logits)
    model.train()
    return total / n


def main():
    parser = argparse.ArgumentParser(description="U-Net binary segmentation")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--gradient-clipping", type=float, default=1.0)
    args = parser.parse_args()

    train_set, val_set = ShapesDataset(32, seed=0), ShapesDataset(16, seed=1)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    val_loader = DataLoader(val_set, batch_size=args.batch_size, shuffle=False)

    model = UNet(n_channels=1, n_classes=1)
    optimizer = optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=1e-8
    )
    scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, "min", patience=0, factor=0.5)
    criterion = nn.BCEWithLogitsLoss()

    for epoch in range(1, args.epochs + 1):
        model.train()
        epoch_loss = 0.0
        for step, batch in enumerate(train_loader):
            images, true_masks = batch["image"], batch["mask"]
            masks_pred = model(images)
            loss = criterion(masks_pred, true_masks) + dice_loss(masks_pred, true_masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_value_(model.parameters(), args.gradient_clipping)
            optimizer.step()
            epoch_loss += loss.item()
            print(f"epoch {epoch} step {step} loss: {loss.item():.6f}")
        val_dice_loss = evaluate(model, val_loader)
        scheduler.step(val_dice_loss)
        print(
            f"epoch {epoch} train loss: {epoch_loss / len(train_loader):.6f} "
            f"validation dice loss: {val_dice_loss:.6f} lr {optimizer.param_groups[0]['lr']:.2e}"
        )


if __name__ == "__main__":
    main()

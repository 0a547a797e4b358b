"""Segmentation of synthetic rectangles through transforms.v2: images and masks as
tv_tensors.Image / tv_tensors.Mask flipped together (RandomHorizontalFlip,
RandomVerticalFlip), ToDtype with scale converting the images only, Normalize, a ResNet-18 body
cut by torchvision.models.feature_extraction.create_feature_extractor at three stages, a
small feature pyramid (1x1 lateral convs, nearest upsampling, sums) with an auxiliary
image-level head, the backbone's BatchNorm layers frozen (eval mode, no gradients), SGD
with nesterov momentum on two parameter groups, LinearLR warmup chained with
ExponentialLR (ChainedScheduler), and get_graph_node_names to pick the nodes."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
from torchvision.transforms import v2

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=2)
args = p.parse_args()
torch.manual_seed(0)

train_tf = v2.Compose(
    [
        v2.RandomHorizontalFlip(p=0.5),
        v2.RandomVerticalFlip(p=0.3),
        v2.ToDtype(torch.float32, scale=True),  # images only: masks keep their integers
        v2.Normalize(mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]),
    ]
)
test_tf = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.25] * 3)])


class Rectangles(Dataset):
    """uint8 noise images with a coloured rectangle per image; the mask marks it with the
    image's class (1 or 2), the rest is background (0)."""

    def __init__(self, n, transform):
        self.images = (torch.rand(n, 3, 32, 32) * 160).to(torch.uint8)
        self.labels = torch.randint(1, 3, (n,))
        self.masks = torch.zeros(n, 32, 32, dtype=torch.int64)
        corners = torch.randint(0, 16, (n, 2))
        for i in range(n):
            r, c = corners[i].tolist()
            self.images[i, self.labels[i] - 1, r : r + 12, c : c + 14] += 90
            self.masks[i, r : r + 12, c : c + 14] = self.labels[i]
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image, mask = tv_tensors.Image(self.images[i]), tv_tensors.Mask(self.masks[i])
        image, mask = self.transform(image, mask)
        return image, mask.as_subclass(torch.Tensor), self.labels[i] - 1


train_loader = DataLoader(Rectangles(48, train_tf), batch_size=12)
test_loader = DataLoader(Rectangles(24, test_tf), batch_size=12)

backbone = torchvision.models.resnet18(num_classes=3)
train_nodes, eval_nodes = get_graph_node_names(backbone)
stages = sorted({n.split(".")[0] for n in eval_nodes if n.startswith("layer")})
print("nodes", len(train_nodes), len(eval_nodes), stages)
body = create_feature_extractor(
    backbone, return_nodes={"layer2": "c3", "layer3": "c4", "layer4": "c5"}
)


class FPNHead(nn.Module):
    def __init__(self, body, chans=(128, 256, 512), width=32, n_classes=3):
        super().__init__()
        self.body = body
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in chans)
        self.smooth = nn.Conv2d(width, width, 3, padding=1)
        self.seg = nn.Conv2d(width, n_classes, 1)
        self.cls = nn.Linear(width, n_classes)

    def forward(self, x):
        feats = self.body(x)
        c3, c4, c5 = feats["c3"], feats["c4"], feats["c5"]
        p5 = self.lateral[2](c5)
        p4 = self.lateral[1](c4) + F.interpolate(p5, size=c4.shape[-2:], mode="nearest")
        p3 = self.lateral[0](c3) + F.interpolate(p4, scale_factor=2.0, mode="nearest")
        p3 = F.relu(self.smooth(p3))
        dense = F.interpolate(self.seg(p3), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return dense, self.cls(p3.mean((2, 3)))


model = FPNHead(body)
for m in model.body.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.eval()
        m.weight.requires_grad_(False)
        m.bias.requires_grad_(False)

body_params = [p for p in model.body.parameters() if p.requires_grad]
head_params = [p for n, p in model.named_parameters() if not n.startswith("body.")]
opt = torch.optim.SGD(
    [{"params": body_params, "lr": 0.01}, {"params": head_params}],
    lr=0.05,
    momentum=0.9,
    nesterov=True,
    weight_decay=1e-4,
)
sched = torch.optim.lr_scheduler.ChainedScheduler(
    [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3),
        torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    ]
)


def train_mode(model):
    model.train()
    for m in model.body.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


for epoch in range(args.epochs):
    train_mode(model)
    total = 0.0
    for images, masks, labels in train_loader:
        dense, logits = model(images)
        loss = F.cross_entropy(dense, masks) + 0.5 * F.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
    model.eval()
    with torch.no_grad():
        test, pix = 0.0, 0.0
        for images, masks, _labels in test_loader:
            dense, logits = model(images)
            test += F.cross_entropy(dense, masks).item()
            pix += (dense.argmax(1) == masks).float().mean().item()
    print(
        f"epoch {epoch} train loss {total / len(train_loader):.6f} "
        f"test loss {test / len(test_loader):.6f} pixel acc {pix / len(test_loader):.4f} "
        f"lr {sched.get_last_lr()[1]:.6f}"
    )

"""CIFAR-10-style training with torchvision: a dataset of uint8 images turned into PIL
images (``to_pil_image``) standing in for the downloaded CIFAR-10 (small images to keep
the run short), augmentation transforms on them, a ResNet-18 from torchvision.models with
a 3x3 stem for small images, SGD with momentum and weight decay, a cosine schedule, label smoothing,
and a saved-and-restored state dict."""

import argparse
import io

import torch
import torch.nn as nn
import torch.optim as optim
import torchvision
import torchvision.transforms as transforms
import torchvision.transforms.functional as TF
from torch.utils.data import DataLoader, Dataset

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=2)
args = p.parse_args()
torch.manual_seed(0)

mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
train_tf = transforms.Compose(
    [
        transforms.RandomCrop(16, padding=2),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ]
)
test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


class SyntheticCIFAR(Dataset):
    """Noise images with a colour cue per class, stored as uint8 like CIFAR-10's arrays."""

    def __init__(self, n, transform):
        self.labels = torch.randint(0, 10, (n,))
        base = torch.rand(n, 3, 16, 16) * 0.5
        base[torch.arange(n), self.labels % 3] += 0.4  # a colour cue for the class
        self.images = (base.clamp(0, 1) * 255).to(torch.uint8)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = TF.to_pil_image(self.images[i])
        return self.transform(img), int(self.labels[i])


train = SyntheticCIFAR(64, train_tf)
test = SyntheticCIFAR(32, test_tf)
train_loader = DataLoader(train, batch_size=32, shuffle=True)
test_loader = DataLoader(test, batch_size=32)

model = torchvision.models.resnet18(num_classes=10)
model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
model.maxpool = nn.Identity()
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * len(train_loader))

for epoch in range(args.epochs):
    model.train()
    total = 0.0
    for x, y in train_loader:
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * x.size(0)
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += (model(x).argmax(1) == y).sum().item()
    print(f"epoch {epoch} loss: {total / len(train):.5f} test_acc {correct / len(test):.3f}")

buf = io.BytesIO()
torch.save(model.state_dict(), buf)
buf.seek(0)
restored = torchvision.models.resnet18(num_classes=10)
restored.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
restored.maxpool = nn.Identity()
restored.load_state_dict(torch.load(buf))
restored.eval()
x, _ = next(iter(test_loader))
with torch.no_grad():
    diff = (restored(x) - model(x)).abs().max().item()
print(f"restored max diff loss: {diff:.6f}")

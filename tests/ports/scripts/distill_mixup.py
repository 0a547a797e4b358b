"""Knowledge distillation with mixup: a teacher CNN, then a smaller student trained on mixed
inputs against the teacher's softened logits and the hard labels, under bfloat16 autocast,
finished with stochastic weight averaging (SWA) and a BatchNorm refresh."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import SWALR, AveragedModel, update_bn
from torch.utils.data import DataLoader, TensorDataset


class Teacher(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class Student(nn.Module):
    def __init__(self, num_classes=4):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def make_data(rng, n, num_classes=4):
    """Blobs in one of four quadrants of an 8x8 image, plus noise."""
    y = rng.integers(0, num_classes, n)
    x = 0.3 * rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        r, q = divmod(int(c), 2)
        x[i, 0, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 1.0
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def distillation_loss(student_logits, teacher_logits, T):  # noqa: N803 - the temperature, as papers write it
    kl = nn.KLDivLoss(reduction="batchmean")
    return (
        kl(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits / T, dim=1)) * T * T
    )


def train_teacher(teacher, loader, epochs, lr):
    opt = torch.optim.SGD(teacher.parameters(), lr=lr, momentum=0.9)
    ce = nn.CrossEntropyLoss()
    for epoch in range(epochs):
        teacher.train()
        total = 0.0
        for x, y in loader:
            opt.zero_grad()
            loss = ce(teacher(x), y)
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"teacher epoch {epoch} loss: {total / len(loader):.5f}")


def evaluate(model, x, y, tag):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
    print(f"{tag} eval loss: {loss.item():.5f} acc {acc.item():.3f}")


def main():
    parser = argparse.ArgumentParser(description="Distillation + mixup + SWA")
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--swa-start", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--swa-lr", type=float, default=0.02)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--alpha", type=float, default=0.7, help="weight of the distillation term")
    parser.add_argument("--mixup-alpha", type=float, default=0.4)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_data(rng, 256)
    x_val, y_val = make_data(rng, 128)
    loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size, shuffle=True)

    teacher = Teacher()
    train_teacher(teacher, loader, args.teacher_epochs, 0.05)
    evaluate(teacher, x_val, y_val, "teacher")
    teacher.eval()

    student = Student()
    optimizer = torch.optim.SGD(student.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    swa_model = AveragedModel(student)
    evaluate(swa_model, x_val, y_val, "swa (not yet averaged)")
    swa_scheduler = SWALR(optimizer, swa_lr=args.swa_lr, anneal_epochs=2, anneal_strategy="cos")
    ce = nn.CrossEntropyLoss()
    T = args.temperature
    for epoch in range(args.epochs):
        student.train()
        total = 0.0
        for x, y in loader:
            lam = float(rng.beta(args.mixup_alpha, args.mixup_alpha))
            perm = torch.from_numpy(rng.permutation(x.size(0)))
            mixed = lam * x + (1 - lam) * x[perm]
            with torch.no_grad():
                t_logits = teacher(mixed)
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=args.amp):
                s_logits = student(mixed)
            s_logits = s_logits.float()
            hard = lam * ce(s_logits, y) + (1 - lam) * ce(s_logits, y[perm])
            soft = distillation_loss(s_logits, t_logits, T)
            loss = args.alpha * soft + (1 - args.alpha) * hard
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item()
        if epoch >= args.swa_start:
            swa_model.update_parameters(student)
            swa_scheduler.step()
        lr = optimizer.param_groups[0]["lr"]
        print(f"student epoch {epoch} lr {lr:.4f} loss: {total / len(loader):.5f}")
    evaluate(student, x_val, y_val, "student")
    update_bn(loader, swa_model)
    evaluate(swa_model, x_val, y_val, "swa")


if __name__ == "__main__":
    main()

"""DINO (Caron et al., 2021) in the manner of facebookresearch/dino, on synthetic textured
images: a Dataset whose __getitem__ returns a multi-crop list (two global 16x16 crops and four
local 8x8 crops, each a random box resized with F.interpolate and flipped), collated by the
DataLoader into a list of batches; a MultiCropWrapper that groups crops of the same size with
torch.unique_consecutive(return_counts=True) + cumsum and runs the backbone (ending in adaptive
average pooling) once per size; a DINO head whose last layer is nn.utils.weight_norm (or
parametrizations.weight_norm) with the norm fixed to one; a teacher loaded from the student's
state dict, updated by an EMA under torch.no_grad (mul_/add_ on .data, or lerp_) with a cosine
momentum schedule; the DINO loss with a centering buffer updated by momentum and a teacher
temperature warm-up; AdamW with per-iteration lr and weight-decay schedules (biases and norms in
a group without decay), per-parameter gradient clipping, the last layer's gradients dropped
during the first epoch, and a weighted k-NN evaluation of the teacher's features (topk, gather,
scatter_)."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class Backbone(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Flatten(),
        )
        self.embed_dim = 2 * width

    def forward(self, x):
        return self.net(x)


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, norm_last_layer=True, nlayers=3, hidden_dim=64,
                 bottleneck_dim=32, parametrized=False):  # fmt: skip
        super().__init__()
        layers = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
        for _ in range(nlayers - 2):
            layers.append(nn.Linear(hidden_dim, hidden_dim))
            layers.append(nn.GELU())
        layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.apply(self._init_weights)
        last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)
        if parametrized:  # the newer API: original0 is the norm g, original1 the direction v
            self.last_layer = nn.utils.parametrizations.weight_norm(last_layer)
            weight_g = self.last_layer.parametrizations.weight.original0
        else:
            self.last_layer = nn.utils.weight_norm(last_layer)
            weight_g = self.last_layer.weight_g
        weight_g.data.fill_(1)
        if norm_last_layer:
            weight_g.requires_grad = False

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.mlp(x)
        x = F.normalize(x, dim=-1, p=2)
        return self.last_layer(x)


class MultiCropWrapper(nn.Module):
    """Runs the backbone once per crop resolution, then the head on all crops together."""

    def __init__(self, backbone, head):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        if not isinstance(x, list):
            x = [x]
        idx_crops = torch.cumsum(
            torch.unique_consecutive(
                torch.tensor([inp.shape[-1] for inp in x]), return_counts=True
            )[1],
            0,
        )
        start_idx, output = 0, torch.empty(0).to(x[0].device)
        for end_idx in idx_crops:
            _out = self.backbone(torch.cat(x[start_idx:end_idx]))
            output = torch.cat((output, _out))
            start_idx = end_idx
        return self.head(output)


class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp,
                 warmup_teacher_temp_epochs, nepochs, student_temp=0.1,
                 center_momentum=0.9):  # fmt: skip
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        # a lower teacher temperature at the start: sharper targets while the model is random
        self.teacher_temp_schedule = np.concatenate(
            (
                np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
                np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp,
            )
        )

    def forward(self, student_output, teacher_output, epoch):
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    # we skip cases where student and teacher operate on the same view
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        batch_center = batch_center / len(teacher_output)
        self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)


def random_resized_crop(img, size, scale):
    """A random box covering `scale` of the image (aspect ratio 3/4..4/3), resized to size."""
    _, h, w = img.shape
    area = h * w
    r = torch.rand(3).tolist()
    target_area = area * (scale[0] + (scale[1] - scale[0]) * r[0])
    aspect = math.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * r[1])
    ch = max(2, min(h, int(round(math.sqrt(target_area / aspect)))))
    cw = max(2, min(w, int(round(math.sqrt(target_area * aspect)))))
    top = int(r[2] * (h - ch + 1))
    left = int((1 - r[2]) * (w - cw + 1) * 0.999)
    crop = img[None, :, top : top + ch, left : left + cw]
    crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[0]
    if torch.rand(1).item() < 0.5:
        crop = torch.flip(crop, dims=[2])
    return crop


class DataAugmentationDINO:
    def __init__(self, global_crops_scale=(0.4, 1.0), local_crops_scale=(0.1, 0.4),
                 local_crops_number=4):  # fmt: skip
        self.global_crops_scale = global_crops_scale
        self.local_crops_scale = local_crops_scale
        self.local_crops_number = local_crops_number

    def __call__(self, image):
        crops = [random_resized_crop(image, 16, self.global_crops_scale) for _ in range(2)]
        for _ in range(self.local_crops_number):
            crops.append(random_resized_crop(image, 8, self.local_crops_scale))
        brightness = 0.8 + 0.4 * torch.rand(len(crops))
        return [c * b for c, b in zip(crops, brightness)]


class TextureDataset(Dataset):
    def __init__(self, images, labels, transform=None):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        return (self.transform(image) if self.transform else image), self.labels[i]


def make_textures(rng, n, size=24, classes=4):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    labels = rng.integers(0, classes, n)
    images = np.empty((n, 3, size, size), dtype=np.float32)
    for i, c in enumerate(labels):
        theta = np.pi * c / classes
        wave = np.sin(0.8 * (np.cos(theta) * xx + np.sin(theta) * yy) + rng.uniform(0, 2 * np.pi))
        color = rng.uniform(0.3, 1.0, 3).astype(np.float32)
        images[i] = color[:, None, None] * wave[None] + rng.normal(0, 0.05, (3, size, size))
    return torch.from_numpy(images), torch.from_numpy(labels)


def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0,
                     start_warmup_value=0):  # fmt: skip
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)
    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (
        1 + np.cos(np.pi * iters / len(iters))
    )
    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def get_params_groups(model):
    regularized = []
    not_regularized = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # we do not regularize biases nor Norm parameters
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{"params": regularized}, {"params": not_regularized, "weight_decay": 0.0}]


def clip_gradients(model, clip):
    norms = []
    for _, p in model.named_parameters():
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            norms.append(param_norm.item())
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)
    return norms


def cancel_gradients_last_layer(epoch, model, freeze_last_layer):
    if epoch >= freeze_last_layer:
        return
    for n, p in model.named_parameters():
        if "last_layer" in n:
            p.grad = None


@torch.no_grad()
def knn_classifier(train_features, train_labels, test_features, test_labels, k=10, t=0.07,
                   num_classes=4):  # fmt: skip
    similarity = torch.mm(test_features, train_features.T)
    distances, indices = similarity.topk(k, largest=True, sorted=True)
    candidates = train_labels.view(1, -1).expand(len(test_features), -1)
    retrieved_neighbors = torch.gather(candidates, 1, indices)
    retrieval_one_hot = torch.zeros(len(test_features) * k, num_classes)
    retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
    distances_transform = distances.clone().div_(t).exp_()
    probs = torch.sum(
        torch.mul(
            retrieval_one_hot.view(len(test_features), -1, num_classes),
            distances_transform.view(len(test_features), -1, 1),
        ),
        1,
    )
    probs = probs / probs.sum(1, keepdim=True)
    nll = -torch.log(probs.gather(1, test_labels[:, None]) + 1e-8).mean()
    top1 = (probs.argmax(1) == test_labels).float().mean()
    return nll.item(), top1.item()


def main():
    parser = argparse.ArgumentParser(description="DINO on synthetic textures")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--out-dim", type=int, default=64)
    parser.add_argument("--momentum-teacher", type=float, default=0.9)
    parser.add_argument("--clip-grad", type=float, default=0.3)
    parser.add_argument("--freeze-last-layer", type=int, default=1)
    parser.add_argument("--ema", choices=["mul_add", "lerp"], default="mul_add")
    parser.add_argument("--no-norm-last-layer", action="store_true")
    parser.add_argument(
        "--parametrized",
        action="store_true",
        help="nn.utils.parametrizations.weight_norm for the last layer",
    )
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x_train, y_train = make_textures(rng, 96)
    x_test, y_test = make_textures(rng, 48)
    dataset = TextureDataset(x_train, y_train, DataAugmentationDINO(local_crops_number=4))
    data_loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)

    head = dict(norm_last_layer=not args.no_norm_last_layer, parametrized=args.parametrized)
    student = MultiCropWrapper(Backbone(), DINOHead(32, args.out_dim, **head))
    teacher = MultiCropWrapper(Backbone(), DINOHead(32, args.out_dim, **head))
    params_groups = get_params_groups(student)
    optimizer = torch.optim.AdamW(params_groups)  # lr and wd are set by the schedules
    # teacher and student start with the same weights; there is no backpropagation
    # through the teacher
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False

    dino_loss = DINOLoss(args.out_dim, 6, 0.04, 0.07, 2, args.epochs)
    niter = len(data_loader)
    lr_schedule = cosine_scheduler(args.lr * args.batch_size / 256 * 16, 1e-6, args.epochs,
                                   niter, warmup_epochs=1)  # fmt: skip
    wd_schedule = cosine_scheduler(0.04, 0.4, args.epochs, niter)
    momentum_schedule = cosine_scheduler(args.momentum_teacher, 1, args.epochs, niter)

    for epoch in range(args.epochs):
        student.train()
        total = 0.0
        for it, (images, _) in enumerate(data_loader):
            it = niter * epoch + it
            for i, param_group in enumerate(optimizer.param_groups):
                param_group["lr"] = lr_schedule[it]
                if i == 0:  # only the first group is regularized
                    param_group["weight_decay"] = wd_schedule[it]
            teacher_output = teacher(images[:2])  # only the 2 global views pass the teacher
            student_output = student(images)
            loss = dino_loss(student_output, teacher_output, epoch)
            optimizer.zero_grad()
            loss.backward()
            param_norms = clip_gradients(student, args.clip_grad)
            cancel_gradients_last_layer(epoch, student, args.freeze_last_layer)
            optimizer.step()
            # EMA update for the teacher
            with torch.no_grad():
                m = momentum_schedule[it]
                for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                    if args.ema == "lerp":
                        param_k.lerp_(param_q.detach(), 1 - m)
                    else:
                        param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)
            total += loss.item()
        with torch.no_grad():
            last = student.head.last_layer
            if args.parametrized:
                g, v = (
                    last.parametrizations.weight.original0,
                    last.parametrizations.weight.original1,
                )
            else:
                g, v = last.weight_g, last.weight_v
        print(
            f"epoch {epoch} loss: {total / niter:.6f} "
            f"teacher temp {dino_loss.teacher_temp_schedule[epoch]:.4f} "
            f"center norm {dino_loss.center.norm().item():.6f} "
            f"last-layer |v| {v.norm().item():.4f} |g| {g.mean().item():.4f} "
            f"grad norm {max(param_norms):.4f}"
        )

    teacher.eval()
    with torch.no_grad():
        f_train = F.normalize(teacher.backbone(x_train[:, :, 4:20, 4:20]), dim=1)
        f_test = F.normalize(teacher.backbone(x_test[:, :, 4:20, 4:20]), dim=1)
    nll, top1 = knn_classifier(f_train, y_train, f_test, y_test)
    print(f"knn loss: {nll:.6f} top1 {top1:.3f}")


if __name__ == "__main__":
    main()

"""Grad-CAM (Selvaraju et al., 2017) through module hooks, on a "decoy" image task in the
spirit of Right for the Right Reasons (Ross et al., 2017): each training image carries a
corner patch whose brightness gives the class away; with --rrr the loss penalises input
gradients of the log-probabilities inside that corner (double backward). A forward pre-hook
standardises the inputs, a forward hook and a full backward hook on the last convolutional
block capture its activations and gradients for Grad-CAM, a full backward pre-hook records the
gradient reaching the classifier, and Tensor.register_hook clips the gradient flowing into the
pooled features. A torch.jit.script function normalises the maps, and torch.testing.assert_close
checks the hook-captured gradients against torch.autograd.grad. The Grad-CAM loss is the share
of the map outside the object."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


@torch.jit.script
def normalise_maps(cam: torch.Tensor) -> torch.Tensor:
    flat = cam.flatten(1)
    lo = flat.min(dim=1, keepdim=True)[0]
    hi = flat.max(dim=1, keepdim=True)[0]
    return ((flat - lo) / (hi - lo + 1e-6)).view_as(cam)


def shapes(n, size=16, decoy=True):
    labels = torch.arange(n) % 3
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.zeros(n, 1, size, size)
    masks = torch.zeros(n, 1, size, size)
    centres = 5 + (torch.rand(n, 2) * (size - 10)).long()
    for i in range(n):
        cy, cx = int(centres[i, 0]), int(centres[i, 1])
        dy, dx = (yy - cy).abs(), (xx - cx).abs()
        if labels[i] == 0:
            shape = (dy <= 2) & (dx <= 2)
        elif labels[i] == 1:
            shape = ((dy == 0) & (dx <= 3)) | ((dx == 0) & (dy <= 3))
        else:
            shape = dy + dx == 3
        images[i, 0][shape] = 1.0
        masks[i, 0][(dy <= 3) & (dx <= 3)] = 1.0
    level = labels.float() if decoy else torch.randint(0, 3, (n,)).float()
    images[:, :, :3, :3] = (level / 2).view(n, 1, 1, 1)
    images = images + 0.15 * torch.randn(n, 1, size, size)
    corner = torch.zeros(1, 1, size, size)
    corner[:, :, :3, :3] = 1.0
    return images, labels, masks, corner


class Net(nn.Module):
    def __init__(self, clip):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(16, 3)
        self.clip = clip

    def forward(self, x):
        a = self.features(x)
        pooled = a.mean((2, 3))
        if self.training and pooled.requires_grad:
            pooled.register_hook(lambda g: g.clamp(-self.clip, self.clip))
        return self.head(pooled)


def standardise(module, args):
    (x,) = args
    return ((x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-5),)


class GradCam:
    def __init__(self, model, layer):
        self.acts, self.grads, self.head_grads = None, None, []
        layer.register_forward_hook(self.save_acts)
        layer.register_full_backward_hook(self.save_grads)
        model.head.register_full_backward_pre_hook(self.save_head_grad)

    def save_acts(self, module, inputs, output):
        self.acts = output

    def save_grads(self, module, grad_input, grad_output):
        self.grads = grad_output[0]

    def save_head_grad(self, module, grad_output):
        self.head_grads.append(grad_output[0].norm())

    def maps(self, model, x, labels):
        logits = model(x)
        model.zero_grad()
        score = logits.gather(1, labels[:, None]).sum()
        check = torch.autograd.grad(score, self.acts, retain_graph=True)[0]
        score.backward()
        # the hook-captured gradient is d(score)/d(activations), as autograd.grad computes it
        torch.testing.assert_close(self.grads, check, rtol=1e-5, atol=1e-7)
        weights = self.grads.mean((2, 3), keepdim=True)
        cam = F.relu((weights * self.acts).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return normalise_maps(cam.detach())


def main():
    parser = argparse.ArgumentParser(description="Grad-CAM with hooks, RRR")
    parser.add_argument("--rrr", type=float, default=0.0, help="input-gradient penalty")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--clip", type=float, default=0.5)
    args = parser.parse_args()

    x, y, _, corner = shapes(192)
    x_test, y_test, m_test, _ = shapes(96, decoy=False)
    model = Net(args.clip)
    model.register_forward_pre_hook(standardise)
    cam = GradCam(model, model.features)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for i in range(0, len(x), args.batch):
            xb = x[i : i + args.batch].clone().requires_grad_(args.rrr > 0)
            logits = model(xb)
            loss = F.cross_entropy(logits, y[i : i + args.batch])
            if args.rrr > 0:
                (g,) = torch.autograd.grad(F.log_softmax(logits, 1).sum(), xb, create_graph=True)
                loss = loss + args.rrr * (corner * g).pow(2).sum() / len(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        model.eval()
        maps = cam.maps(model, x_test, y_test)
        with torch.no_grad():
            test_loss = F.cross_entropy(model(x_test), y_test).item()
            outside = (maps * (1 - m_test)).sum() / maps.sum()
        head_grad = torch.stack(cam.head_grads).mean().item()
        cam.head_grads.clear()
        print(
            f"epoch {epoch} loss {total / (len(x) // args.batch):.6f} test loss {test_loss:.6f} "
            f"cam loss {outside.item():.6f} head grad {head_grad:.5f}"
        )


if __name__ == "__main__":
    main()

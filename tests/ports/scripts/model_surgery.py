"""Model surgery as fine-tuning and compression code does it: a model built on the meta
device and materialised with to_empty + reset_parameters, load_state_dict(strict=False,
assign=True) of a partial checkpoint, weight init through Module.apply, global and per-module
forward (pre-)hooks with kwargs that rewrite inputs and outputs, a custom parametrization with
right_inverse (a low-rank + scaled weight), Conv-BatchNorm fusion for inference
(fuse_conv_bn_eval), parameters_to_vector / vector_to_parameters for a flat-vector
perturbation, torch.func.functional_call with swapped weights, and a frozen submodule via
requires_grad_(False) during fine-tuning."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as P
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.nn.utils.fusion import fuse_conv_bn_eval

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, x, scale=1.0):
        h = F.relu(self.bn(self.conv(x)))
        h = self.pool(h).flatten(1)
        return self.head(F.gelu(self.fc(h))) * scale


class LowRankScaled(nn.Module):
    """weight = scale * (U @ V); right_inverse gives U, V from a weight by truncated SVD."""

    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def forward(self, u, v, scale):
        return scale * (u @ v)

    def right_inverse(self, w):
        uf, s, vh = torch.linalg.svd(w, full_matrices=False)
        r = self.rank
        return uf[:, :r] * s[:r].sqrt(), s[:r].sqrt()[:, None] * vh[:r], torch.ones(())


with torch.device("meta"):
    model = Net()
print("meta", model.fc.weight.is_meta, model.fc.weight.shape)
model = model.to_empty(device="cpu")
for m in model.modules():
    if hasattr(m, "reset_parameters"):
        m.reset_parameters()


def init_weights(m):
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


model.apply(init_weights)
# a partial "pretrained" checkpoint: the convolution only, assigned in place of the tensors
pre = {"conv.weight": torch.randn(8, 2, 3, 3) * 0.2, "conv.bias": torch.zeros(8)}
result = model.load_state_dict(pre, strict=False, assign=True)
print("missing", len(result.missing_keys), "unexpected", len(result.unexpected_keys))

calls = []


def pre_hook(module, args, kwargs):
    x = args[0]
    return (x - x.mean((2, 3), keepdim=True),), {**kwargs, "scale": kwargs.get("scale", 1.0) * 2}


def out_hook(module, args, output):
    calls.append(type(module).__name__)
    return output * 0.5 if isinstance(module, nn.Linear) and module.out_features == 16 else None


h1 = model.register_forward_pre_hook(pre_hook, with_kwargs=True)
h2 = model.fc.register_forward_hook(out_hook)
h3 = nn.modules.module.register_module_forward_hook(
    lambda m, i, o: calls.append("global") if isinstance(m, nn.Conv2d) else None
)

labels = torch.arange(48) % 3
x = torch.randn(48, 2, 6, 6)
for c in range(3):
    x[labels == c, c % 2, : 2 + c] += 1.0

opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(args.epochs):
    if epoch == 1:  # fine-tuning: freeze the convolution
        model.conv.requires_grad_(False)
    for i in range(0, 48, 12):
        loss = F.cross_entropy(model(x[i : i + 12], scale=1.0), labels[i : i + 12])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.6f} calls {len(calls)}")
h1.remove()
h2.remove()
h3.remove()

# compress fc by a parametrization initialised from its trained weight
P.register_parametrization(model.fc, "weight", LowRankScaled(rank=4), unsafe=True)
orig = (
    model.fc.parametrizations.weight.original0.shape,
    model.fc.parametrizations.weight.original1.shape,
)
print("low rank", tuple(orig[0]), tuple(orig[1]), P.is_parametrized(model.fc, "weight"))
opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
for i in range(0, 48, 12):
    loss = F.cross_entropy(model(x[i : i + 12]), labels[i : i + 12])
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"low-rank loss {loss.item():.6f}")
P.remove_parametrizations(model.fc, "weight", leave_parametrized=True)

model.eval()
with torch.no_grad():
    ref = model(x)
    fused = fuse_conv_bn_eval(model.conv, model.bn)
    model.conv, model.bn = fused, nn.Identity()
    print(
        f"fused loss {F.cross_entropy(model(x), labels).item():.6f} "
        f"diff {(model(x) - ref).abs().max().item() < 1e-4}"
    )

    vec = parameters_to_vector(model.parameters())
    vector_to_parameters(vec * 1.01, model.parameters())
    print(f"perturbed loss {F.cross_entropy(model(x), labels).item():.6f} numel {vec.numel()}")
    vector_to_parameters(vec, model.parameters())

    swapped = {k: v * 0.9 if k.startswith("head") else v for k, v in model.named_parameters()}
    out = functional_call(model, swapped, (x,), {"scale": 1.0})
    print(f"functional loss {F.cross_entropy(out, labels).item():.6f}")

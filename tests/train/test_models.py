"""Built-in models: registry, forward/backward, and weight names equal to PyTorch twins."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import models

CASES = [
    # name, kwargs, input shape (ints for token models), output shape
    ("mlp", {"in_features": 64, "hidden": [32, 16]}, (3, 1, 8, 8), (3, 10)),
    ("cnn", {"image_size": 8}, (2, 1, 8, 8), (2, 10)),
    ("resnet", {"in_channels": 1, "widths": [4, 8, 8]}, (2, 1, 8, 8), (2, 10)),
    (
        "gpt",
        {"vocab_size": 11, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 16},
        (2, 6),
        (2, 6, 11),
    ),
]


def _input(name, shape, device="cpu"):
    if name == "gpt":
        return mg.randint(0, 11, shape, device=device)
    return mg.randn(*shape, device=device)


def test_registry_lists_and_rejects():
    assert models.available() == ["cnn", "gpt", "mlp", "resnet"]
    with pytest.raises(ValueError, match="available models: cnn, gpt, mlp, resnet"):
        models.get("transformer-xl")


def test_get_records_recipe():
    m = models.get("mlp", in_features=4, hidden=(3,), num_classes=2)
    assert m.recipe == {
        "name": "mlp",
        "kwargs": {"in_features": 4, "hidden": [3], "num_classes": 2},
    }
    assert "recipe" not in m.state_dict()


@pytest.mark.parametrize("name,kwargs,xshape,yshape", CASES, ids=[c[0] for c in CASES])
def test_forward_backward(name, kwargs, xshape, yshape, device):
    m = models.get(name, **kwargs).to(device)
    out = m(_input(name, xshape, device))
    assert tuple(out.shape) == yshape
    out.float().square().mean().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None, pname
        assert p.grad.shape == p.shape, pname
        assert np.isfinite(p.grad.cpu().numpy()).all(), pname


# ---------------------------------------------------------------- PyTorch twins
def _torch_twins():
    torch = pytest.importorskip("torch")
    tnn, F = torch.nn, torch.nn.functional

    class MLP(tnn.Module):
        def __init__(self, in_features=64, hidden=(256, 128), num_classes=10):
            super().__init__()
            layers, w = [], in_features
            for h in hidden:
                layers += [tnn.Linear(w, h), tnn.ReLU()]
                w = h
            layers.append(tnn.Linear(w, num_classes))
            self.flatten = tnn.Flatten()
            self.layers = tnn.Sequential(*layers)

        def forward(self, x):
            return self.layers(self.flatten(x))

    class CNN(tnn.Module):
        def __init__(self, in_channels=1, num_classes=10, image_size=28):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 32, 3, padding=1)
            self.conv2 = tnn.Conv2d(32, 64, 3, padding=1)
            s = image_size // 4
            self.fc1 = tnn.Linear(64 * s * s, 128)
            self.dropout = tnn.Dropout(0.0)
            self.fc2 = tnn.Linear(128, num_classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc2(self.dropout(F.relu(self.fc1(x.flatten(1)))))

    class Block(tnn.Module):
        def __init__(self, i, o, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(i, o, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(o)
            self.conv2 = tnn.Conv2d(o, o, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(o)
            self.downsample = None
            if stride != 1 or i != o:
                self.downsample = tnn.Sequential(
                    tnn.Conv2d(i, o, 1, stride, bias=False), tnn.BatchNorm2d(o)
                )

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(out + (x if self.downsample is None else self.downsample(x)))

    class ResNet(tnn.Module):
        def __init__(self, in_channels=3, widths=(16, 32, 64), num_classes=10):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(widths[0])
            p = widths[0]
            for i, w in enumerate(widths):
                setattr(self, f"layer{i + 1}", tnn.Sequential(Block(p, w, 1 if i == 0 else 2)))
                p = w
            self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
            self.fc = tnn.Linear(p, num_classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(self.avgpool(x).flatten(1))

    class Attn(tnn.Module):
        def __init__(self, c, h):
            super().__init__()
            self.c_attn, self.c_proj, self.h = tnn.Linear(c, 3 * c), tnn.Linear(c, c), h

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (
                z.view(b, t, self.h, c // self.h).transpose(1, 2)
                for z in self.c_attn(x).split(c, dim=2)
            )
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, c))

    class GBlock(tnn.Module):
        def __init__(self, c, h):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = tnn.LayerNorm(c), Attn(c, h), tnn.LayerNorm(c)
            self.mlp = tnn.Module()
            self.mlp.c_fc, self.mlp.c_proj = tnn.Linear(c, 4 * c), tnn.Linear(4 * c, c)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x))))

    class GPT(tnn.Module):
        def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
            super().__init__()
            self.transformer = tnn.ModuleDict(
                dict(
                    wte=tnn.Embedding(vocab_size, n_embd),
                    wpe=tnn.Embedding(block_size, n_embd),
                    h=tnn.ModuleList([GBlock(n_embd, n_head) for _ in range(n_layer)]),
                    ln_f=tnn.LayerNorm(n_embd),
                )
            )
            self.lm_head = tnn.Linear(n_embd, vocab_size, bias=False)

        def forward(self, idx):
            pos = torch.arange(idx.shape[1])
            x = self.transformer.wte(idx) + self.transformer.wpe(pos)
            for blk in self.transformer.h:
                x = blk(x)
            return self.lm_head(self.transformer.ln_f(x))

    return torch, {
        "mlp": lambda kw: MLP(64, kw["hidden"]),
        "cnn": lambda kw: CNN(image_size=8),
        "resnet": lambda kw: ResNet(1, kw["widths"]),
        "gpt": lambda kw: GPT(**kw),
    }


@pytest.mark.parametrize("name,kwargs,xshape,yshape", CASES, ids=[c[0] for c in CASES])
def test_weights_match_pytorch_twin(name, kwargs, xshape, yshape):
    """Same keys and shapes as the PyTorch model; with its weights, the same outputs."""
    torch, twins = _torch_twins()
    torch.manual_seed(0)
    tm = twins[name](kwargs).eval()
    m = models.get(name, **kwargs).eval()
    tsd = tm.state_dict()
    sd = m.state_dict()
    assert list(sd) == list(tsd)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in tsd.items()}
    if name == "resnet":  # non-trivial running statistics
        for k, v in tsd.items():
            if k.endswith("running_var"):
                v.uniform_(0.5, 2.0)
            elif k.endswith("running_mean"):
                v.uniform_(-0.5, 0.5)
    m.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tsd.items()})
    x = _input(name, xshape)
    tx = torch.from_numpy(np.array(x.numpy()))
    with torch.no_grad():
        want = tm(tx).numpy()
    with mg.no_grad():
        got = m(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

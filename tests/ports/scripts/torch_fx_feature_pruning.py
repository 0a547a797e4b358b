"""Graph surgery with torch.fx on a small residual CNN: train it, trace it with
symbolic_trace, fold every BatchNorm into the convolution before it by editing the graph
(fuse_conv_bn_weights), cut the auxiliary head off with dead-code elimination, read shapes
with ShapeProp and count multiply-adds with an Interpreter, keep blocks whole with a custom
Tracer, swap the ReLUs for SiLU (graph edits for the modules, a Transformer for the calls),
rewrite the pooling with replace_pattern, save and deep-copy the GraphModule, prune whole
conv channels by their L1 norm (nn.utils.prune) and fine-tune it."""

import argparse
import copy
import io
import operator

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch.fx.passes.shape_prop import ShapeProp
from torch.nn.utils.fusion import fuse_conv_bn_weights
from torch.utils.data import DataLoader, TensorDataset


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1):
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride, 1),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + x)


class SmallResNet(nn.Module):
    def __init__(self, num_classes=4, width=8):
        super().__init__()
        self.stem = ConvBNReLU(1, width)
        self.layer1 = BasicBlock(width)
        self.down = ConvBNReLU(width, 2 * width, stride=2)
        self.layer2 = BasicBlock(2 * width)
        self.fc = nn.Linear(2 * width, num_classes)
        self.aux = nn.Linear(width, num_classes)  # deep supervision head, training only

    def forward(self, x):
        x = self.layer1(self.stem(x))
        aux = self.aux(x.mean(dim=(2, 3)))
        x = self.layer2(self.down(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1)), aux


def make_data(rng, n, size=8):
    """Four classes of noisy 8x8 images: horizontal, vertical, diagonal stripes and blobs."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    patterns = np.stack([
        np.sin(yy * 1.6), np.sin(xx * 1.6), np.sin((xx + yy) * 1.1),
        np.exp(-((xx - 3.5) ** 2 + (yy - 3.5) ** 2) / 6.0) * 2 - 0.5,
    ])  # fmt: skip
    y = rng.integers(0, 4, n)
    x = patterns[y] * rng.uniform(0.6, 1.4, (n, 1, 1)) + 0.6 * rng.standard_normal((n, size, size))
    return (torch.from_numpy(x[:, None].astype(np.float32)),
            torch.from_numpy(y.astype(np.int64)))  # fmt: skip


def fuse_conv_bn(gm: fx.GraphModule) -> int:
    """Fold each eval-mode BatchNorm2d that follows a Conv2d into the conv's weight and bias."""
    modules = dict(gm.named_modules())
    fused = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if not (isinstance(prev, fx.Node) and prev.op == "call_module"):
            continue
        conv, bn = modules[prev.target], modules[node.target]
        if not isinstance(conv, nn.Conv2d) or len(prev.users) > 1:
            continue
        w, b = fuse_conv_bn_weights(
            conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
        )
        with torch.no_grad():  # fold in place: the optimizer keeps the same parameters
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        fused += 1
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return fused


def swap_relu_modules(gm: fx.GraphModule) -> int:
    """Replace each nn.ReLU call by an F.silu call node, editing the graph in place."""
    modules = dict(gm.named_modules())
    changed = 0
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(modules[node.target], nn.ReLU):
            with gm.graph.inserting_after(node):
                new = gm.graph.call_function(F.silu, node.args)
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
            changed += 1
    gm.delete_all_unused_submodules()
    gm.recompile()
    return changed


class ReluToSilu(fx.Transformer):
    """Re-traces the graph node by node, calling F.silu wherever relu was called."""

    def call_function(self, target, args, kwargs):
        if target in (F.relu, torch.relu):
            return F.silu(*args)
        return super().call_function(target, args, kwargs)


def pool_pattern(x):
    return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def pool_replacement(x):
    return x.mean(dim=(2, 3))


class BlockTracer(fx.Tracer):
    """Keeps ConvBNReLU and BasicBlock as single call_module nodes."""

    def is_leaf_module(self, m, module_qualified_name):
        return isinstance(m, (ConvBNReLU, BasicBlock)) or super().is_leaf_module(
            m, module_qualified_name
        )


def drop_aux_head(gm: fx.GraphModule) -> int:
    """Return only the main logits: the aux branch becomes dead code and is removed."""
    before = len(gm.graph.nodes)
    out = next(n for n in gm.graph.nodes if n.op == "output")
    logits = out.args[0][0]
    out.args = (logits,)
    gm.graph.eliminate_dead_code()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return before - len(gm.graph.nodes)


class MacCounter(fx.Interpreter):
    """Counts the multiply-adds of the conv and linear layers while running the graph."""

    def run(self, *args):
        self.macs = 0
        return super().run(*args)

    def call_module(self, target, args, kwargs):
        out = super().call_module(target, args, kwargs)
        mod = self.module.get_submodule(target)
        if isinstance(mod, nn.Conv2d):
            self.macs += out[0].numel() * mod.weight[0].numel()
        elif isinstance(mod, nn.Linear):
            self.macs += out[0].numel() * mod.in_features
        return out


def evaluate(model, loader, criterion):
    model.eval()
    total, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            logits = out[0] if isinstance(out, tuple) else out
            total += criterion(logits, yb).item() * len(yb)
            correct += (logits.argmax(1) == yb).sum().item()
            n += len(yb)
    return total / n, correct / n


def main():
    parser = argparse.ArgumentParser(description="torch.fx conv-bn fusion and pruning")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=3)
    parser.add_argument("--prune-amount", type=float, default=0.25)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    train_ds = TensorDataset(*make_data(rng, 256))
    test_ds = TensorDataset(*make_data(rng, 128))
    train_loader = DataLoader(train_ds, batch_size=32, shuffle=True)
    test_loader = DataLoader(test_ds, batch_size=64)
    criterion = nn.CrossEntropyLoss()

    model = SmallResNet()
    # NOTE: SGD, not Adam: the gradient of a conv bias feeding a BatchNorm is rounding noise,
    # which Adam would scale up to full-size steps
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for xb, yb in train_loader:
            logits, aux = model(xb)
            loss = criterion(logits, yb) + 0.3 * criterion(aux, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        test_loss, acc = evaluate(model, test_loader, criterion)
        print(f"epoch {epoch} train loss {total / len(train_loader):.5f} "
              f"test loss {test_loss:.5f} acc {acc:.3f}")  # fmt: skip

    model.eval()
    gm = fx.symbolic_trace(model)
    ops = {}
    for node in gm.graph.nodes:
        ops[node.op] = ops.get(node.op, 0) + 1
    print("traced", len(gm.graph.nodes), "nodes", sorted(ops.items()))
    print("nodes:", " ".join(n.name for n in gm.graph.nodes))
    xb, yb = next(iter(test_loader))
    ref_logits, _ = model(xb)
    traced_logits, _ = gm(xb)
    print("traced matches eager", torch.equal(ref_logits, traced_logits))

    print("fused", fuse_conv_bn(gm), "conv+bn pairs")
    fused_logits, _ = gm(xb)
    gap = (fused_logits - ref_logits).abs().max().item()
    print(f"fused test loss {criterion(fused_logits, yb).item():.5f} close {gap < 1e-4}")
    print("removed", drop_aux_head(gm), "nodes with the aux head;",
          "aux left:", any("aux" in name for name, _ in gm.named_modules()))  # fmt: skip

    ShapeProp(gm).propagate(xb)
    for node in gm.graph.nodes:
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Conv2d):
            print(f"  {node.name}: {tuple(node.meta['tensor_meta'].shape)}")
    counter = MacCounter(gm)
    counter.run(xb[:1])
    print("macs per image", counter.macs)

    coarse = fx.GraphModule(model, BlockTracer().trace(model))
    print("coarse graph:", [n.target for n in coarse.graph.nodes if n.op == "call_module"])

    print("swapped", swap_relu_modules(gm), "ReLU modules")
    gm = ReluToSilu(gm).transform()
    matches = fx.replace_pattern(gm, pool_pattern, pool_replacement)
    print("pool patterns replaced", len(matches))
    print(gm.code.strip())
    silu_loss, silu_acc = evaluate(gm, test_loader, criterion)
    print(f"silu test loss {silu_loss:.5f} acc {silu_acc:.3f}")

    buffer = io.BytesIO()
    torch.save(gm.state_dict(), buffer)
    twin = copy.deepcopy(gm)
    buffer.seek(0)
    twin.load_state_dict(torch.load(buffer))
    print("deep copy matches", torch.allclose(twin(xb), gm(xb)), type(twin).__name__)

    convs = [(name, m) for name, m in gm.named_modules() if isinstance(m, nn.Conv2d)]
    for _, conv in convs[1:]:  # keep the single-channel stem whole
        prune.ln_structured(conv, "weight", amount=args.prune_amount, n=1, dim=0)
    kept = [int((m.weight_mask.flatten(1).sum(1) > 0).sum()) for _, m in convs[1:]]
    print("channels kept", kept, "of", [m.out_channels for _, m in convs[1:]])
    pruned_loss, _ = evaluate(gm, test_loader, criterion)
    print(f"pruned test loss {pruned_loss:.5f}")

    optimizer = torch.optim.SGD(gm.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=args.finetune_epochs * len(train_loader)
    )
    for epoch in range(1, args.finetune_epochs + 1):
        gm.train()
        total = 0.0
        for xb, yb in train_loader:
            loss = criterion(gm(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item()
        test_loss, acc = evaluate(gm, test_loader, criterion)
        print(f"finetune {epoch} train loss {total / len(train_loader):.5f} "
              f"test loss {test_loss:.5f} acc {acc:.3f}")  # fmt: skip

    for _, conv in convs[1:]:
        prune.remove(conv, "weight")
    zero_rows = sum(int((m.weight.flatten(1).abs().sum(1) == 0).sum()) for _, m in convs[1:])
    final_loss, final_acc = evaluate(gm, test_loader, criterion)
    print(f"final test loss {final_loss:.5f} acc {final_acc:.3f} zeroed channels {zero_rows}")
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    print("graph calls:", targets.count(F.silu), "silu,", targets.count(operator.add), "add")


if __name__ == "__main__":
    main()

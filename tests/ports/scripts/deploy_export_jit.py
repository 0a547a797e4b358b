"""The deployment end of a project: a small text classifier (EmbeddingBag with offsets,
a residual MLP, LayerNorm) trained briefly, then packaged three ways and reloaded: a
TorchScript module by torch.jit.trace and by torch.jit.script (saved to and loaded from a
buffer), and a torch.export program (ExportedProgram.module(), a dynamic batch dim via
torch.export.Dim, saved and loaded with torch.export.save/load). Each packaged model must
give the trained model's outputs; the losses they score are printed."""

import argparse
import io

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
args = p.parse_args()
torch.manual_seed(0)

vocab, n_classes = 50, 3


class BagClassifier(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, dim, mode="mean")
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, n_classes)

    def forward(self, tokens, offsets):
        h = self.norm(self.bag(tokens, offsets))
        h = h + torch.tanh(self.fc1(h))
        return self.out(h)


class Dense(nn.Module):
    """The part that export takes: pooled features in, log-probabilities out."""

    def __init__(self, clf):
        super().__init__()
        self.norm, self.fc1, self.out = clf.norm, clf.fc1, clf.out

    def forward(self, pooled):
        h = self.norm(pooled)
        h = h + torch.tanh(self.fc1(h))
        return F.log_softmax(self.out(h), dim=-1)


def make_batch(n):
    labels = torch.randint(0, n_classes, (n,))
    lengths = torch.randint(2, 7, (n,))
    tokens = []
    for lab, ln in zip(labels.tolist(), lengths.tolist()):
        t = torch.randint(0, vocab, (ln,))
        t[0] = lab * 10 + 5  # a class word
        tokens.append(t)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
    return torch.cat(tokens), offsets, labels


batches = [make_batch(16) for _ in range(8)]
test_tokens, test_offsets, test_labels = make_batch(24)
model = BagClassifier()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(args.epochs):
    total = 0.0
    for tokens, offsets, labels in batches:
        loss = F.cross_entropy(model(tokens, offsets), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
    print(f"epoch {epoch} train loss {total / len(batches):.6f}")

model.eval()
with torch.no_grad():
    ref = model(test_tokens, test_offsets)
    print(f"eager test loss {F.cross_entropy(ref, test_labels).item():.6f}")

    traced = torch.jit.trace(model, (test_tokens, test_offsets))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    out = loaded(test_tokens, test_offsets)
    print(
        f"traced test loss {F.cross_entropy(out, test_labels).item():.6f} "
        f"same {torch.allclose(out, ref, atol=1e-6)}"
    )

    scripted = torch.jit.script(model)
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    out = torch.jit.load(buf)(test_tokens, test_offsets)
    print(
        f"scripted test loss {F.cross_entropy(out, test_labels).item():.6f} "
        f"same {torch.allclose(out, ref, atol=1e-6)}"
    )

    pooled = model.bag(test_tokens, test_offsets)
    dense = Dense(model).eval()
    batch = torch.export.Dim("batch", min=2, max=64)
    program = torch.export.export(dense, (pooled,), dynamic_shapes={"pooled": {0: batch}})
    buf = io.BytesIO()
    torch.export.save(program, buf)
    buf.seek(0)
    reloaded = torch.export.load(buf).module()
    for k in (24, 5):
        logp = reloaded(pooled[:k])
        print(
            f"exported batch {k} nll loss {F.nll_loss(logp, test_labels[:k]).item():.6f} "
            f"same {torch.allclose(logp, F.log_softmax(ref[:k], -1), atol=1e-5)}"
        )
    print("exported inputs", program.graph_signature.user_inputs, "params", len(program.state_dict))

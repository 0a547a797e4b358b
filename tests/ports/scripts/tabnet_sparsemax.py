"""TabNet (Arik & Pfister, 2019) in the style of the pytorch-tabnet package: sparsemax and
entmax-1.5 as torch.autograd.Function subclasses (threshold found with a descending sort,
cumsum and gather; backward from the saved output), ghost batch normalisation over
chunks of the batch, attentive transformers with a prior, GLU feature transformers, and the
sparsity regulariser on the masks. Trained briefly on a synthetic tabular task."""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import Function


def _make_ix_like(x, dim):
    d = x.size(dim)
    rho = torch.arange(1, d + 1, device=x.device, dtype=x.dtype)
    view = [1] * x.dim()
    view[0] = -1
    return rho.view(view).transpose(0, dim)


class SparsemaxFunction(Function):
    @staticmethod
    def forward(ctx, input, dim=-1):  # noqa: A002 - pytorch-tabnet's signature
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val
        tau, supp_size = SparsemaxFunction._threshold_and_support(input, dim=dim)
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(supp_size, output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        supp_size, output = ctx.saved_tensors
        dim = ctx.dim
        grad_input = grad_output.clone()
        grad_input[output == 0] = 0
        v_hat = grad_input.sum(dim=dim) / supp_size.to(output.dtype).squeeze(dim)
        v_hat = v_hat.unsqueeze(dim)
        grad_input = torch.where(output != 0, grad_input - v_hat, grad_input)
        return grad_input, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):  # noqa: A002
        input_srt, _ = torch.sort(input, descending=True, dim=dim)
        input_cumsum = input_srt.cumsum(dim) - 1
        rhos = _make_ix_like(input, dim)
        support = rhos * input_srt > input_cumsum
        support_size = support.sum(dim=dim).unsqueeze(dim)
        tau = input_cumsum.gather(dim, support_size - 1)
        tau /= support_size.to(input.dtype)
        return tau, support_size


class Entmax15Function(Function):
    @staticmethod
    def forward(ctx, input, dim=-1):  # noqa: A002
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = (input - max_val) / 2
        tau_star, _ = Entmax15Function._threshold_and_support(input, dim)
        output = torch.clamp(input - tau_star, min=0) ** 2
        ctx.save_for_backward(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        gppr = y.sqrt()
        dX = grad_output * gppr
        q = dX.sum(ctx.dim) / gppr.sum(ctx.dim)
        q = q.unsqueeze(ctx.dim)
        dX -= q * gppr
        return dX, None

    @staticmethod
    def _threshold_and_support(input, dim=-1):  # noqa: A002
        Xsrt, _ = torch.sort(input, descending=True, dim=dim)
        rho = _make_ix_like(input, dim)
        mean = Xsrt.cumsum(dim) / rho
        mean_sq = (Xsrt**2).cumsum(dim) / rho
        ss = rho * (mean_sq - mean**2)
        delta = (1 - ss) / rho
        delta_nz = torch.clamp(delta, 0)
        tau = mean - torch.sqrt(delta_nz)
        support_size = (tau <= Xsrt).sum(dim).unsqueeze(dim)
        tau_star = tau.gather(dim, support_size - 1)
        return tau_star, support_size


class Sparsemax(nn.Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return SparsemaxFunction.apply(x, self.dim)


class Entmax15(nn.Module):
    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return Entmax15Function.apply(x, self.dim)


class GBN(nn.Module):
    """Ghost batch normalisation: batch norm over virtual batches."""

    def __init__(self, input_dim, virtual_batch_size=64, momentum=0.02):
        super().__init__()
        self.virtual_batch_size = virtual_batch_size
        self.bn = nn.BatchNorm1d(input_dim, momentum=momentum)

    def forward(self, x):
        chunks = x.chunk(int(-(-x.size(0) // self.virtual_batch_size)), 0)
        res = [self.bn(x_) for x_ in chunks]
        return torch.cat(res, dim=0)


class GLULayer(nn.Module):
    def __init__(self, input_dim, output_dim, virtual_batch_size):
        super().__init__()
        self.output_dim = output_dim
        self.fc = nn.Linear(input_dim, 2 * output_dim, bias=False)
        self.bn = GBN(2 * output_dim, virtual_batch_size)

    def forward(self, x):
        x = self.bn(self.fc(x))
        return torch.mul(x[:, : self.output_dim], torch.sigmoid(x[:, self.output_dim :]))


class FeatTransformer(nn.Module):
    def __init__(self, input_dim, output_dim, shared, n_independent, virtual_batch_size):
        super().__init__()
        self.shared = shared
        first_in = output_dim if shared is not None else input_dim
        self.specifics = nn.ModuleList(
            [
                GLULayer(first_in if i == 0 else output_dim, output_dim, virtual_batch_size)
                for i in range(n_independent)
            ]
        )
        self.scale = torch.sqrt(torch.FloatTensor([0.5]))

    def forward(self, x):
        if self.shared is not None:
            x = self.shared[0](x)
            for layer in self.shared[1:]:
                x = torch.add(x, layer(x)) * self.scale
        for layer in self.specifics:
            x = torch.add(x, layer(x)) * self.scale
        return x


class AttentiveTransformer(nn.Module):
    def __init__(self, input_dim, group_dim, virtual_batch_size, mask_type):
        super().__init__()
        self.fc = nn.Linear(input_dim, group_dim, bias=False)
        self.bn = GBN(group_dim, virtual_batch_size)
        self.selector = Sparsemax(dim=-1) if mask_type == "sparsemax" else Entmax15(dim=-1)

    def forward(self, priors, processed_feat):
        x = self.bn(self.fc(processed_feat))
        x = torch.mul(x, priors)
        return self.selector(x)


class TabNet(nn.Module):
    def __init__(self, input_dim, output_dim, n_d=8, n_a=8, n_steps=3, gamma=1.3,
                 virtual_batch_size=64, mask_type="sparsemax"):  # fmt: skip
        super().__init__()
        self.n_d, self.n_a, self.n_steps, self.gamma = n_d, n_a, n_steps, gamma
        self.initial_bn = nn.BatchNorm1d(input_dim, momentum=0.01)
        shared = nn.ModuleList(
            [
                GLULayer(input_dim, n_d + n_a, virtual_batch_size),
                GLULayer(n_d + n_a, n_d + n_a, virtual_batch_size),
            ]
        )
        self.initial_splitter = FeatTransformer(input_dim, n_d + n_a, shared, 2,
                                                virtual_batch_size)  # fmt: skip
        self.feat_transformers = nn.ModuleList()
        self.att_transformers = nn.ModuleList()
        for _ in range(n_steps):
            self.feat_transformers.append(
                FeatTransformer(input_dim, n_d + n_a, shared, 2, virtual_batch_size)
            )
            self.att_transformers.append(
                AttentiveTransformer(n_a, input_dim, virtual_batch_size, mask_type)
            )
        self.final_mapping = nn.Linear(n_d, output_dim, bias=False)

    def forward(self, x):
        res = 0
        x = self.initial_bn(x)
        prior = torch.ones(x.shape, device=x.device)
        M_loss = 0
        att = self.initial_splitter(x)[:, self.n_d :]
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            M_loss += torch.mean(torch.sum(torch.mul(M, torch.log(M + 1e-15)), dim=1))
            prior = torch.mul(self.gamma - M, prior)
            masked_x = torch.mul(M, x)
            out = self.feat_transformers[step](masked_x)
            d = F.relu(out[:, : self.n_d])
            res = torch.add(res, d)
            att = out[:, self.n_d :]
        M_loss /= self.n_steps
        return self.final_mapping(res), M_loss


def make_data(n, n_features=10):
    x = torch.randn(n, n_features)
    # only features 0, 3 and 7 matter
    score = 1.5 * x[:, 0] - x[:, 3] * x[:, 7] + 0.3 * torch.randn(n)
    y = torch.bucketize(score, torch.tensor([-1.0, 0.5]))
    return x, y


def train(mask_type, epochs):
    x, y = make_data(512)
    x_val, y_val = make_data(128)
    model = TabNet(10, 3, mask_type=mask_type)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.9)
    lambda_sparse = 1e-3
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(x.size(0))
        for i in range(0, x.size(0), 128):
            idx = perm[i : i + 128]
            logits, m_loss = model(x[idx])
            loss = F.cross_entropy(logits, y[idx]) - lambda_sparse * m_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            print(f"[{mask_type}] step {i // 128} loss {loss.item():.5f}")
        model.eval()
        with torch.no_grad():
            logits, _ = model(x_val)
            val_loss = F.cross_entropy(logits, y_val)
            acc = (logits.argmax(1) == y_val).float().mean()
        print(f"[{mask_type}] epoch {epoch} train loss {loss.item():.5f} "
              f"val loss {val_loss.item():.5f} acc {acc.item():.3f}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description="TabNet with sparsemax / entmax masks")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    torch.manual_seed(0)
    # the two mappings on their own, with a gradient check against autograd-free maths
    z = torch.tensor([[1.0, 0.8, -0.5, 0.1], [0.0, 0.0, 3.0, -1.0]], requires_grad=True)
    for name, fn in (("sparsemax", SparsemaxFunction), ("entmax15", Entmax15Function)):
        p = fn.apply(z, -1)
        (p * torch.arange(4.0)).sum().backward()
        print(f"{name} sum {p.sum(1).tolist()} nnz {(p > 0).sum().item()} "
              f"grad loss {z.grad.abs().sum().item():.5f}")  # fmt: skip
        z.grad = None
    train("sparsemax", args.epochs)
    train("entmax", args.epochs)


if __name__ == "__main__":
    main()

"""A masked autoencoder (He et al., 2021) on synthetic 16x16 images, with linear-attention
transformer blocks. Patchify/unpatchify by torch.einsum index permutations; per-sample random
masking by torch.argsort of noise and torch.gather (keep 25% of the patches, restore the
order for the decoder with mask tokens); fixed 2-d sin-cos position embeddings in
non-trainable Parameters; a normalized-pixel loss on the masked patches only. The encoder's
attention is "linear" (Katharopoulos et al., 2020, elu(x) + 1 feature map) and the decoder's
uses Performer-style positive random features (Choromanski et al., 2021) with a fixed random
projection buffer, both written with multi-operand torch.einsum. AdamW with a per-iteration
half-cycle cosine learning rate set by hand in the param_groups."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMG, PATCH, CHANS = 16, 4, 1


def sincos_pos_embed(dim, grid_size):
    """2-d sin-cos position embedding, (grid_size**2, dim), numpy as in the MAE code."""
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))
    gh, gw = np.meshgrid(
        np.arange(grid_size, dtype=np.float64), np.arange(grid_size), indexing="ij"
    )
    parts = []
    for g in (gh, gw):
        out = np.einsum("m,d->md", g.reshape(-1), omega)
        parts += [np.sin(out), np.cos(out)]
    return np.concatenate(parts, axis=1).astype(np.float32)


class LinearAttention(nn.Module):
    def __init__(self, dim, heads=2, kernel="elu", n_features=16):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.kernel = kernel
        if kernel == "favor":
            self.register_buffer("omega", torch.randn(dim // heads, n_features))

    def feature_map(self, x):
        if self.kernel == "elu":
            return F.elu(x) + 1
        x = x * x.size(-1) ** -0.25
        wx = torch.einsum("bhnd,dm->bhnm", x, self.omega)
        sq = (x**2).sum(-1, keepdim=True) / 2
        return torch.exp(wx - sq - wx.amax(dim=-1, keepdim=True).detach()) / math.sqrt(wx.size(-1))

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = self.feature_map(qkv[0]), self.feature_map(qkv[1]), qkv[2]
        kv = torch.einsum("bhnd,bhne->bhde", k, v)
        z = 1.0 / (torch.einsum("bhnd,bhd->bhn", q, k.sum(dim=2)) + 1e-6)
        out = torch.einsum("bhnd,bhde,bhn->bhne", q, kv, z)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Block(nn.Module):
    def __init__(self, dim, kernel, mlp_ratio=2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = LinearAttention(dim, kernel=kernel)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoder(nn.Module):
    def __init__(self, embed_dim=32, depth=2, decoder_dim=16, decoder_depth=1, norm_pix_loss=True):
        super().__init__()
        self.num_patches = (IMG // PATCH) ** 2
        self.norm_pix_loss = norm_pix_loss
        self.patch_embed = nn.Linear(PATCH * PATCH * CHANS, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches + 1, embed_dim), requires_grad=False
        )
        self.blocks = nn.ModuleList([Block(embed_dim, "elu") for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)

        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, self.num_patches + 1, decoder_dim), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            [Block(decoder_dim, "favor") for _ in range(decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, PATCH * PATCH * CHANS)
        self.initialize_weights()

    def initialize_weights(self):
        grid = IMG // PATCH
        for param, dim in ((self.pos_embed, self.pos_embed.size(-1)),
                           (self.decoder_pos_embed, self.decoder_pos_embed.size(-1))):  # fmt: skip
            pe = np.concatenate([np.zeros((1, dim), np.float32), sincos_pos_embed(dim, grid)])
            param.data.copy_(torch.from_numpy(pe).unsqueeze(0))
        torch.nn.init.normal_(self.cls_token, std=0.02)
        torch.nn.init.normal_(self.mask_token, std=0.02)

    @staticmethod
    def patchify(imgs):
        n, h = imgs.shape[0], IMG // PATCH
        x = imgs.reshape(n, CHANS, h, PATCH, h, PATCH)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(n, h * h, PATCH * PATCH * CHANS)

    @staticmethod
    def unpatchify(x):
        n, h = x.shape[0], IMG // PATCH
        x = x.reshape(n, h, h, PATCH, PATCH, CHANS)
        x = torch.einsum("nhwpqc->nchpwq", x)
        return x.reshape(n, CHANS, h * PATCH, h * PATCH)

    @staticmethod
    def random_masking(x, mask_ratio):
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        noise = torch.rand(N, L, device=x.device)  # noise in [0, 1]
        ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)  # 0 is keep, 1 is remove
        return x_masked, mask, ids_restore

    def forward_encoder(self, imgs, mask_ratio):
        x = self.patch_embed(self.patchify(imgs)) + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        n_mask = ids_restore.shape[1] + 1 - x.shape[1]
        mask_tokens = self.mask_token.repeat(x.shape[0], n_mask, 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # no cls token
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)  # mean loss per patch
        return (loss * mask).sum() / mask.sum()  # mean loss on removed patches

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask


def make_images(rng, n):
    yy, xx = np.mgrid[0:IMG, 0:IMG] / IMG
    imgs = []
    for _ in range(n):
        fy, fx = rng.uniform(1, 3, 2)
        blob = np.exp(
            -((yy - rng.uniform(0.2, 0.8)) ** 2 + (xx - rng.uniform(0.2, 0.8)) ** 2) / 0.02
        )
        imgs.append(np.sin(2 * np.pi * (fy * yy + fx * xx)) * 0.5 + blob)
    return torch.from_numpy(np.stack(imgs)[:, None].astype(np.float32))


def adjust_learning_rate(optimizer, it, total, base_lr, warmup):
    if it < warmup:
        lr = base_lr * (it + 1) / warmup
    else:
        lr = base_lr * 0.5 * (1.0 + math.cos(math.pi * (it - warmup) / (total - warmup)))
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
    return lr


def main():
    parser = argparse.ArgumentParser(description="MAE pre-training with linear attention")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--blr", type=float, default=1e-3)
    parser.add_argument("--mask-ratio", type=float, default=0.75)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    data = make_images(rng, 48)
    model = MaskedAutoencoder()
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.blr,
        betas=(0.9, 0.95),
    )
    steps_per_epoch = len(data) // args.batch_size
    total = args.epochs * steps_per_epoch
    for epoch in range(args.epochs):
        model.train()
        for i in range(steps_per_epoch):
            it = epoch * steps_per_epoch + i
            lr = adjust_learning_rate(optimizer, it, total, args.blr, warmup=2)
            imgs = data[i * args.batch_size : (i + 1) * args.batch_size]
            loss, _, _ = model(imgs, mask_ratio=args.mask_ratio)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(f"epoch {epoch} it {it} lr {lr:.6f} loss: {loss.item():.6f}")

    model.eval()
    with torch.no_grad():
        loss, pred, mask = model(data[:4], mask_ratio=args.mask_ratio)
        recon = model.unpatchify(pred)
        pixel_mask = model.unpatchify(mask.unsqueeze(-1).repeat(1, 1, PATCH * PATCH * CHANS))
    print(f"eval masked loss: {loss.item():.6f}")
    print(f"masked pixels {pixel_mask.mean().item():.3f} recon std {recon.std().item():.4f}")
    assert torch.equal(model.unpatchify(model.patchify(data[:2])), data[:2])


if __name__ == "__main__":
    main()

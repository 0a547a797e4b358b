"""A tiny NeRF (Mildenhall et al., 2020) in the manner of the common PyTorch re-implementations:
rays from a pinhole camera (torch.meshgrid with indexing="xy"), a sin/cos positional encoding
of 2^k frequencies, stratified samples along each ray, volume rendering by alpha compositing
(an exclusive cumulative product of transmittance), hierarchical sampling of a fine network
by inverting the coarse weights' CDF (torch.searchsorted with right=True), and the MSE / PSNR
(torch.log10) of rendered pixels against views of a synthetic coloured sphere."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Embedder:
    """x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)]"""

    def __init__(self, num_freqs, input_dims=3, include_input=True):
        self.freq_bands = 2.0 ** torch.linspace(0.0, num_freqs - 1, num_freqs)
        self.include_input = include_input
        self.out_dim = input_dims * (2 * num_freqs + int(include_input))

    def __call__(self, x):
        parts = [x] if self.include_input else []
        for freq in self.freq_bands:
            parts.append(torch.sin(x * freq))
            parts.append(torch.cos(x * freq))
        return torch.cat(parts, dim=-1)


class NeRF(nn.Module):
    def __init__(self, depth=4, width=64, input_ch=3, input_ch_views=3, skips=(2,)):
        super().__init__()
        self.input_ch = input_ch
        self.skips = skips
        layers = [nn.Linear(input_ch, width)]
        for i in range(1, depth):
            layers.append(nn.Linear(width + input_ch if i - 1 in skips else width, width))
        self.pts_linears = nn.ModuleList(layers)
        self.alpha_linear = nn.Linear(width, 1)
        self.feature_linear = nn.Linear(width, width)
        self.views_linears = nn.ModuleList([nn.Linear(input_ch_views + width, width // 2)])
        self.rgb_linear = nn.Linear(width // 2, 3)

    def forward(self, x):
        input_pts, input_views = torch.split(x, [self.input_ch, x.shape[-1] - self.input_ch], -1)
        h = input_pts
        for i, layer in enumerate(self.pts_linears):
            h = F.relu(layer(h))
            if i in self.skips:
                h = torch.cat([input_pts, h], -1)
        alpha = self.alpha_linear(h)
        h = torch.cat([self.feature_linear(h), input_views], -1)
        for layer in self.views_linears:
            h = F.relu(layer(h))
        return torch.cat([self.rgb_linear(h), alpha], -1)


def get_rays(H, W, focal, c2w):  # noqa: N803 - image height and width, as in the paper
    i, j = torch.meshgrid(
        torch.arange(W, dtype=torch.float32), torch.arange(H, dtype=torch.float32), indexing="xy"
    )
    dirs = torch.stack([(i - W * 0.5) / focal, -(j - H * 0.5) / focal, -torch.ones_like(i)], -1)
    rays_d = torch.sum(dirs[..., None, :] * c2w[:3, :3], -1)  # rotate into the world frame
    rays_o = c2w[:3, -1].expand(rays_d.shape)
    return rays_o, rays_d


def pose_on_circle(theta, radius=2.5, elevation=-0.4):
    """Camera-to-world matrix of a camera on a circle, looking at the origin."""
    eye = np.array(
        [
            radius * math.cos(elevation) * math.sin(theta),
            -radius * math.sin(elevation),
            radius * math.cos(elevation) * math.cos(theta),
        ]
    )
    back = eye / np.linalg.norm(eye)
    right = np.cross([0.0, 1.0, 0.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4, dtype=np.float32)
    c2w[:3, :3] = np.stack([right, up, back], 1)
    c2w[:3, 3] = eye
    return torch.from_numpy(c2w)


def render_sphere(rays_o, rays_d, radius=0.8):
    """Ground truth: a sphere coloured by its normals on a white background."""
    o, d = rays_o.numpy().astype(np.float64), rays_d.numpy().astype(np.float64)
    a = (d * d).sum(-1)
    b = 2 * (o * d).sum(-1)
    c = (o * o).sum(-1) - radius**2
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    normal = (o + t[..., None] * d) / radius
    rgb = np.where((disc > 0)[..., None], 0.5 + 0.5 * normal, 1.0)
    return torch.from_numpy(rgb.astype(np.float32))


def raw2outputs(raw, z_vals, rays_d, raw_noise_std=0.0, white_bkgd=True):
    dists = z_vals[..., 1:] - z_vals[..., :-1]
    dists = torch.cat([dists, torch.Tensor([1e10]).expand(dists[..., :1].shape)], -1)
    dists = dists * torch.norm(rays_d[..., None, :], dim=-1)
    rgb = torch.sigmoid(raw[..., :3])
    noise = 0.0
    if raw_noise_std > 0.0:
        noise = torch.randn(raw[..., 3].shape) * raw_noise_std
    alpha = 1.0 - torch.exp(-F.relu(raw[..., 3] + noise) * dists)
    # transmittance: the exclusive cumulative product of (1 - alpha)
    ones = torch.ones((alpha.shape[0], 1))
    transmittance = torch.cumprod(torch.cat([ones, 1.0 - alpha + 1e-10], -1), -1)[:, :-1]
    weights = alpha * transmittance
    rgb_map = torch.sum(weights[..., None] * rgb, -2)
    depth_map = torch.sum(weights * z_vals, -1)
    acc_map = torch.sum(weights, -1)
    disp_map = 1.0 / torch.max(1e-10 * torch.ones_like(depth_map), depth_map / acc_map)
    if white_bkgd:
        rgb_map = rgb_map + (1.0 - acc_map[..., None])
    return rgb_map, disp_map, acc_map, weights, depth_map


def sample_pdf(bins, weights, n_samples, det=False, eps=1e-5):
    """Draw n_samples per ray from the piecewise-constant PDF given by weights over bins.

    NOTE: as mip-NeRF, rays with (almost) no weight are padded towards a uniform PDF and
    empty bins keep probability 0; a `denom < eps` test on the CDF's steps instead would
    flip with the cumulative sum's rounding where a ray is opaque."""
    weight_sum = torch.sum(weights, -1, keepdim=True)
    padding = F.relu(eps - weight_sum)
    weights = weights + padding / weights.shape[-1]
    pdf = weights / (weight_sum + padding)
    cdf = torch.clamp(torch.cumsum(pdf[..., :-1], -1), max=1.0)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf, torch.ones_like(cdf[..., :1])], -1)
    if det:
        u = torch.linspace(0.0, 1.0, steps=n_samples)
        u = u.expand(list(cdf.shape[:-1]) + [n_samples])
    else:
        u = torch.rand(list(cdf.shape[:-1]) + [n_samples])
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.max(torch.zeros_like(inds - 1), inds - 1)
    above = torch.min((cdf.shape[-1] - 1) * torch.ones_like(inds), inds)
    inds_g = torch.stack([below, above], -1)  # (rays, n_samples, 2)
    matched = [inds_g.shape[0], inds_g.shape[1], cdf.shape[-1]]
    cdf_g = torch.gather(cdf.unsqueeze(1).expand(matched), 2, inds_g)
    bins_g = torch.gather(bins.unsqueeze(1).expand(matched), 2, inds_g)
    t = torch.clip(torch.nan_to_num((u - cdf_g[..., 0]) / (cdf_g[..., 1] - cdf_g[..., 0]), 0), 0, 1)
    return bins_g[..., 0] + t * (bins_g[..., 1] - bins_g[..., 0])


class Renderer:
    def __init__(self, coarse, fine, embed, embed_views, near, far, n_samples, n_importance):
        self.coarse, self.fine = coarse, fine
        self.embed, self.embed_views = embed, embed_views
        self.near, self.far = near, far
        self.n_samples, self.n_importance = n_samples, n_importance

    def run_network(self, pts, viewdirs, net):
        flat = pts.reshape(-1, pts.shape[-1])
        dirs = viewdirs[:, None].expand(pts.shape).reshape(-1, 3)
        out = net(torch.cat([self.embed(flat), self.embed_views(dirs)], -1))
        return out.reshape(list(pts.shape[:-1]) + [out.shape[-1]])

    def render_rays(self, rays_o, rays_d, perturb=1.0, raw_noise_std=0.0):
        n_rays = rays_o.shape[0]
        viewdirs = rays_d / torch.norm(rays_d, dim=-1, keepdim=True)
        t_vals = torch.linspace(0.0, 1.0, steps=self.n_samples)
        z_vals = self.near * (1.0 - t_vals) + self.far * t_vals
        z_vals = z_vals.expand([n_rays, self.n_samples])
        if perturb > 0.0:
            # stratified: one uniform sample inside each interval
            mids = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
            upper = torch.cat([mids, z_vals[..., -1:]], -1)
            lower = torch.cat([z_vals[..., :1], mids], -1)
            z_vals = lower + (upper - lower) * torch.rand(z_vals.shape)
        pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
        raw = self.run_network(pts, viewdirs, self.coarse)
        rgb0, _, _, weights, _ = raw2outputs(raw, z_vals, rays_d, raw_noise_std)

        z_mid = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
        z_samples = sample_pdf(z_mid, weights[..., 1:-1], self.n_importance, det=perturb == 0.0)
        z_samples = z_samples.detach()
        z_vals, _ = torch.sort(torch.cat([z_vals, z_samples], -1), -1)
        pts = rays_o[..., None, :] + rays_d[..., None, :] * z_vals[..., :, None]
        raw = self.run_network(pts, viewdirs, self.fine)
        rgb, disp, acc, _, depth = raw2outputs(raw, z_vals, rays_d, raw_noise_std)
        return {"rgb_map": rgb, "rgb0": rgb0, "disp_map": disp, "acc_map": acc, "depth": depth}


def img2mse(x, y):
    return torch.mean((x - y) ** 2)


def mse2psnr(x):
    return -10.0 * torch.log10(x)


def main():
    parser = argparse.ArgumentParser(description="tiny NeRF on a synthetic sphere")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--n-rand", type=int, default=256)
    parser.add_argument("--n-samples", type=int, default=16)
    parser.add_argument("--n-importance", type=int, default=16)
    parser.add_argument("--lrate", type=float, default=1e-3)
    parser.add_argument("--lrate-decay", type=int, default=100)
    parser.add_argument("--raw-noise-std", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=12)
    args = parser.parse_args()

    H = W = args.size
    focal = 0.5 * W / math.tan(0.5 * 0.7)
    poses = [pose_on_circle(2 * math.pi * k / 7) for k in range(7)]
    rays = [get_rays(H, W, focal, c2w) for c2w in poses]
    images = [render_sphere(o, d) for o, d in rays]
    # the first six views train, the last one tests
    rays_o = torch.cat([o.reshape(-1, 3) for o, _ in rays[:6]])
    rays_d = torch.cat([d.reshape(-1, 3) for _, d in rays[:6]])
    target = torch.cat([img.reshape(-1, 3) for img in images[:6]])
    print(f"rays {tuple(rays_o.shape)} test view {tuple(images[6].shape)}")

    embed, embed_views = Embedder(6), Embedder(2)
    coarse = NeRF(input_ch=embed.out_dim, input_ch_views=embed_views.out_dim)
    fine = NeRF(input_ch=embed.out_dim, input_ch_views=embed_views.out_dim)
    grad_vars = list(coarse.parameters()) + list(fine.parameters())
    optimizer = torch.optim.Adam(params=grad_vars, lr=args.lrate, betas=(0.9, 0.999))
    renderer = Renderer(coarse, fine, embed, embed_views, 1.0, 4.0, args.n_samples,
                        args.n_importance)  # fmt: skip

    for i in range(args.iters):
        select = torch.randint(0, rays_o.shape[0], (args.n_rand,))
        out = renderer.render_rays(rays_o[select], rays_d[select], 1.0, args.raw_noise_std)
        img_loss = img2mse(out["rgb_map"], target[select])
        loss = img_loss + img2mse(out["rgb0"], target[select])
        psnr = mse2psnr(img_loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        decay_rate = 0.1
        new_lrate = args.lrate * (decay_rate ** ((i + 1) / args.lrate_decay))
        for param_group in optimizer.param_groups:
            param_group["lr"] = new_lrate
        if i % 5 == 4:
            print(f"iter {i} loss: {loss.item():.6f} psnr {psnr.item():.3f} lr {new_lrate:.2e}")

    with torch.no_grad():
        o, d = rays[6][0].reshape(-1, 3), rays[6][1].reshape(-1, 3)
        chunks = [renderer.render_rays(o[k : k + 64], d[k : k + 64], perturb=0.0)
                  for k in range(0, o.shape[0], 64)]  # fmt: skip
        rgb = torch.cat([c["rgb_map"] for c in chunks]).reshape(H, W, 3)
        acc = torch.cat([c["acc_map"] for c in chunks])
        disp = torch.cat([c["disp_map"] for c in chunks])
        test_loss = img2mse(rgb, images[6])
    print(f"test loss: {test_loss.item():.6f} psnr {mse2psnr(test_loss).item():.3f}")
    print(f"mean opacity {acc.mean().item():.4f} mean disparity {disp.nanmean().item():.4f}")


if __name__ == "__main__":
    main()

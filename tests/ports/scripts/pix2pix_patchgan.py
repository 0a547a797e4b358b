"""A tiny pix2pix (Isola et al., 2017) on synthetic image pairs: a U-Net generator built
recursively from skip blocks (nn.Conv2d stride 2, nn.ConvTranspose2d, torch.cat skips, in-place
nn.LeakyReLU/nn.ReLU, nn.Tanh, nn.Dropout in the inner decoder blocks) or, with --netG resnet,
the ResNet generator (nn.ReflectionPad2d or nn.ReplicationPad2d via --padding, residual blocks,
nn.ConvTranspose2d with output_padding), normalised with nn.InstanceNorm2d(affine=False) or
nn.BatchNorm2d (--norm); a 70x70-style PatchGAN
discriminator on torch.cat([input, target], 1) with nn.InstanceNorm2d(affine=True,
track_running_stats=True) or nn.BatchNorm2d; a GANLoss module whose labels are registered
buffers expanded with expand_as onto nn.BCEWithLogitsLoss (or nn.MSELoss for --gan-mode
lsgan) plus lambda * L1; two Adam optimizers with betas=(0.5, 0.999) and a linear-decay
LambdaLR; the discriminator toggled with requires_grad_(False) for the generator step and the
fake batch detach()ed for the discriminator step; evaluation in model.eval()."""

import argparse
import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def get_norm_layer(norm):
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)


class UnetSkipBlock(nn.Module):
    """x -> [down -> submodule -> up] -> cat(x, up(x)), as in the pix2pix repository."""

    def __init__(self, outer, inner, input_nc=None, submodule=None, outermost=False,
                 innermost=False, norm_layer=nn.BatchNorm2d, use_dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = outermost
        # NOTE: instance norm without affine has no shift, so the convolutions keep biases
        use_bias = norm_layer.func is nn.InstanceNorm2d
        input_nc = outer if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, inplace=True)
        downnorm = norm_layer(inner)
        uprelu = nn.ReLU(inplace=True)
        upnorm = norm_layer(outer)
        if outermost:
            upconv = nn.ConvTranspose2d(inner * 2, outer, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout=True):
        super().__init__()
        block = UnetSkipBlock(ngf * 4, ngf * 4, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 4):
            block = UnetSkipBlock(ngf * 4, ngf * 4, submodule=block, norm_layer=norm_layer,
                                  use_dropout=use_dropout)  # fmt: skip
        block = UnetSkipBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = UnetSkipBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = UnetSkipBlock(output_nc, ngf, input_nc=input_nc, submodule=block,
                                   outermost=True, norm_layer=norm_layer)  # fmt: skip

    def forward(self, x):
        return self.model(x)


class ResnetBlock(nn.Module):
    def __init__(self, dim, padding_type, norm_layer, use_dropout, use_bias):
        super().__init__()
        pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d}[padding_type]
        block = [pad(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [pad(1), nn.Conv2d(dim, dim, 3, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """The pix2pix/CycleGAN ResNet generator: 7x7 stem, two stride-2 convolutions, residual
    blocks, two transposed convolutions with output_padding, 7x7 head."""

    def __init__(self, input_nc, output_nc, ngf, norm_layer, n_blocks=2, padding_type="reflect"):
        super().__init__()
        use_bias = norm_layer.func is nn.InstanceNorm2d
        model = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(n_blocks):
            model.append(ResnetBlock(ngf * 4, padding_type, norm_layer, True, use_bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=use_bias,
                ),  # fmt: skip
                norm_layer(ngf * mult // 2),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class PatchDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf, n_layers, norm):
        super().__init__()
        if norm == "batch":
            norm_layer = nn.BatchNorm2d
        else:
            norm_layer = functools.partial(nn.InstanceNorm2d, affine=True, track_running_stats=True)
        use_bias = norm != "batch"
        seq = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1),
        ]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


class GANLoss(nn.Module):
    def __init__(self, gan_mode, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        self.register_buffer("real_label", torch.tensor(target_real_label))
        self.register_buffer("fake_label", torch.tensor(target_fake_label))
        self.loss = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()

    def forward(self, prediction, target_is_real):
        target = self.real_label if target_is_real else self.fake_label
        return self.loss(prediction, target.expand_as(prediction))


def init_weights(m, gain=0.02):
    classname = m.__class__.__name__
    if hasattr(m, "weight") and ("Conv" in classname or "Linear" in classname):
        nn.init.normal_(m.weight.data, 0.0, gain)
        if getattr(m, "bias", None) is not None:
            nn.init.constant_(m.bias.data, 0.0)
    elif "BatchNorm2d" in classname:
        nn.init.normal_(m.weight.data, 1.0, gain)
        nn.init.constant_(m.bias.data, 0.0)


def set_requires_grad(nets, requires_grad):
    for net in nets if isinstance(nets, list) else [nets]:
        net.requires_grad_(requires_grad)


def make_pairs(rng, n, size=32):
    """Input: a grey outline map of random rectangles; target: their two-channel filled colours."""
    a = np.zeros((n, 1, size, size), np.float32)
    b = np.full((n, 2, size, size), -1.0, np.float32)
    for i in range(n):
        for _ in range(2):
            y0, x0 = rng.integers(0, size - 8, 2)
            h, w = rng.integers(6, 16, 2)
            y1, x1 = min(y0 + h, size), min(x0 + w, size)
            colour = rng.uniform(-0.8, 0.8, 2)
            b[i, :, y0:y1, x0:x1] = colour[:, None, None]
            a[i, 0, y0:y1, x0] = a[i, 0, y0:y1, x1 - 1] = 1.0
            a[i, 0, y0, x0:x1] = a[i, 0, y1 - 1, x0:x1] = 1.0
    return torch.from_numpy(a * 2 - 1), torch.from_numpy(b)


def main():
    parser = argparse.ArgumentParser(description="tiny pix2pix")
    parser.add_argument("--norm", choices=["batch", "instance"], default="instance")
    parser.add_argument("--gan-mode", choices=["vanilla", "lsgan"], default="vanilla")
    parser.add_argument("--netG", choices=["unet", "resnet"], default="unet")
    parser.add_argument("--padding", choices=["reflect", "replicate"], default="reflect")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lambda-l1", type=float, default=10.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    real_a, real_b = make_pairs(rng, 32)
    test_a, test_b = make_pairs(rng, 8)
    norm_layer = get_norm_layer(args.norm)
    if args.netG == "unet":
        net_g = UnetGenerator(1, 2, num_downs=5, ngf=8, norm_layer=norm_layer)
    else:
        net_g = ResnetGenerator(1, 2, ngf=8, norm_layer=norm_layer, padding_type=args.padding)
    net_d = PatchDiscriminator(1 + 2, ndf=8, n_layers=2, norm=args.norm)
    net_g.apply(init_weights)
    net_d.apply(functools.partial(init_weights, gain=0.02))
    criterion_gan = GANLoss(args.gan_mode)
    criterion_l1 = nn.L1Loss()
    opt_g = torch.optim.Adam(net_g.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=args.lr, betas=(0.5, 0.999))
    n_keep = (args.epochs + 1) // 2  # constant lr, then a linear decay over the rest

    def lambda_rule(epoch):
        return 1.0 - max(0, epoch + 1 - n_keep) / float(args.epochs - n_keep + 1)

    schedulers = [
        torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=lambda_rule) for o in (opt_g, opt_d)
    ]

    for epoch in range(args.epochs):
        net_g.train()
        net_d.train()
        sums = np.zeros(4)
        steps = 0
        for i in range(0, len(real_a), args.batch_size):
            a, b = real_a[i : i + args.batch_size], real_b[i : i + args.batch_size]
            fake_b = net_g(a)
            # discriminator: real pairs towards 1, detached fake pairs towards 0
            set_requires_grad(net_d, True)
            opt_d.zero_grad()
            pred_fake = net_d(torch.cat((a, fake_b), 1).detach())
            loss_d_fake = criterion_gan(pred_fake, False)
            pred_real = net_d(torch.cat((a, b), 1))
            loss_d_real = criterion_gan(pred_real, True)
            loss_d = (loss_d_fake + loss_d_real) * 0.5
            loss_d.backward()
            opt_d.step()
            # generator: fool the frozen discriminator and stay close to the target in L1
            set_requires_grad(net_d, False)
            opt_g.zero_grad()
            pred_fake = net_d(torch.cat((a, fake_b), 1))
            loss_g_gan = criterion_gan(pred_fake, True)
            loss_g_l1 = criterion_l1(fake_b, b) * args.lambda_l1
            loss_g = loss_g_gan + loss_g_l1
            loss_g.backward()
            opt_g.step()
            sums += [loss_d_real.item(), loss_d_fake.item(), loss_g_gan.item(), loss_g_l1.item()]
            steps += 1
        for s in schedulers:
            s.step()
        net_g.eval()
        net_d.eval()
        with torch.no_grad():
            out = net_g(test_a)
            test_l1 = F.l1_loss(out, test_b)
            patch = torch.sigmoid(net_d(torch.cat((test_a, out), 1))).mean()
        d_real, d_fake, g_gan, g_l1 = sums / steps
        print(
            f"epoch {epoch} D_real loss {d_real:.6f} D_fake loss {d_fake:.6f} "
            f"G_GAN loss {g_gan:.6f} G_L1 loss {g_l1:.6f} test L1 loss {test_l1.item():.6f} "
            f"patch realness {patch.item():.4f} lr {schedulers[0].get_last_lr()[0]:.5f}"
        )


if __name__ == "__main__":
    main()

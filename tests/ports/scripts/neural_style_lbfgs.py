"""Neural style transfer (after the PyTorch tutorial "Neural Transfer Using PyTorch", Gatys et
al.): a small conv feature network with ContentLoss/StyleLoss modules spliced in after chosen
convolutions, Gram matrices, a Normalization front layer, and the input image itself optimized
by LBFGS through a closure that clamps the pixels in no_grad."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        # a fixed target: detached from the graph, so it is a stated value, not a variable
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()  # a=batch size, b=number of feature maps, (c,d)=dimensions
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    # normalize by the number of elements in each feature map
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


class Normalization(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        # .view the mean and std to make them [C x 1 x 1] so they broadcast over the image
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img):
        return (img - self.mean) / self.std


def feature_net():
    """A small VGG-like stack standing in for the pretrained VGG19 features."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 24, 3, padding=1),
        nn.ReLU(inplace=True),
    ).eval()


content_layers_default = ["conv_4"]
style_layers_default = ["conv_1", "conv_2", "conv_3", "conv_4", "conv_5"]


def get_style_model_and_losses(
    cnn,
    normalization_mean,
    normalization_std,
    style_img,
    content_img,
    content_layers=content_layers_default,
    style_layers=style_layers_default,
):
    normalization = Normalization(normalization_mean, normalization_std)
    content_losses = []
    style_losses = []
    model = nn.Sequential(normalization)

    i = 0  # increment every time we see a conv
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu_{i}"
            # the in-place version doesn't play very nicely with the losses inserted below
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool_{i}"
        else:
            raise RuntimeError(f"Unrecognized layer: {layer.__class__.__name__}")

        model.add_module(name, layer)

        if name in content_layers:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module(f"content_loss_{i}", content_loss)
            content_losses.append(content_loss)

        if name in style_layers:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module(f"style_loss_{i}", style_loss)
            style_losses.append(style_loss)

    # trim off the layers after the last content and style losses
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], (ContentLoss, StyleLoss)):
            break
    model = model[: (i + 1)]
    return model, style_losses, content_losses


def get_input_optimizer(input_img):
    # the image is the parameter that requires a gradient
    return optim.LBFGS([input_img])


def run_style_transfer(
    cnn,
    normalization_mean,
    normalization_std,
    content_img,
    style_img,
    input_img,
    num_steps=300,
    style_weight=1000000,
    content_weight=1,
    log_every=50,
):
    print("Building the style transfer model..")
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, normalization_mean, normalization_std, style_img, content_img
    )
    # optimize the input and not the model parameters
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)

    optimizer = get_input_optimizer(input_img)

    print("Optimizing..")
    run = [0]
    while run[0] <= num_steps:

        def closure():
            # correct the values of the updated input image
            with torch.no_grad():
                input_img.clamp_(0, 1)

            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0

            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss

            style_score *= style_weight
            content_score *= content_weight

            loss = style_score + content_score
            loss.backward()

            run[0] += 1
            if run[0] % log_every == 0:
                print(f"run {run[0]}:")
                print(
                    f"Style Loss: {style_score.item():4f} Content Loss: {content_score.item():4f}"
                )
            return style_score + content_score

        optimizer.step(closure)

    # a last correction...
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img


def make_images(size):
    """A content image of soft blobs and a style image of coloured diagonal stripes."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    content = np.stack(
        [
            np.exp(-((xx - 0.3) ** 2 + (yy - 0.4) ** 2) / 0.05),
            np.exp(-((xx - 0.7) ** 2 + (yy - 0.6) ** 2) / 0.03),
            0.5 * yy,
        ]
    )
    phase = 2 * np.pi * (xx + yy) * 4
    style = np.stack([0.5 + 0.5 * np.sin(phase), 0.5 + 0.5 * np.cos(phase), 0.5 * xx * yy])
    to_tensor = lambda a: torch.tensor(a, dtype=torch.get_default_dtype()).unsqueeze(0)
    return to_tensor(content), to_tensor(style)


def main():
    parser = argparse.ArgumentParser(description="neural style transfer with LBFGS")
    parser.add_argument("--imsize", type=int, default=24)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--style-weight", type=float, default=1e4)
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--log-every", type=int, default=3)
    args = parser.parse_args()
    # float64 throughout: LBFGS steps on a clamped image amplify float32 rounding quickly
    torch.set_default_dtype(torch.float64)

    content_img, style_img = make_images(args.imsize)
    assert style_img.size() == content_img.size(), "style and content images must match"

    cnn = feature_net()
    cnn_normalization_mean = [0.485, 0.456, 0.406]
    cnn_normalization_std = [0.229, 0.224, 0.225]

    input_img = content_img.clone()
    output = run_style_transfer(
        cnn,
        cnn_normalization_mean,
        cnn_normalization_std,
        content_img,
        style_img,
        input_img,
        num_steps=args.steps,
        style_weight=args.style_weight,
        content_weight=args.content_weight,
        log_every=args.log_every,
    )
    print(
        f"output range {output.min().item():.4f} {output.max().item():.4f} "
        f"mean pixel loss: {output.mean().item():.6f}"
    )
    with torch.no_grad():
        diff = F.mse_loss(output, content_img)
    print(f"distance to content loss: {diff.item():.6f}")


if __name__ == "__main__":
    main()

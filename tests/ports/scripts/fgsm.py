"""Fast gradient sign attack on a small classifier (after the PyTorch tutorial
"Adversarial Example Generation"), with a model trained first on synthetic data."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, kernel_size=3)
        self.fc1 = nn.Linear(4 * 3 * 3, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = x.view(-1, 4 * 3 * 3)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


def fgsm_attack(image, epsilon, data_grad):
    sign_data_grad = data_grad.sign()
    perturbed_image = image + epsilon * sign_data_grad
    perturbed_image = torch.clamp(perturbed_image, 0, 1)
    return perturbed_image


def main():
    rng = np.random.default_rng(0)
    protos = rng.random((3, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 60)
    images = np.clip(protos[labels] + 0.1 * rng.standard_normal((60, 1, 8, 8)), 0, 1)
    data_all = torch.tensor(images, dtype=torch.float32)
    target_all = torch.tensor(labels)
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(15):
        opt.zero_grad()
        loss = F.nll_loss(model(data_all), target_all)
        loss.backward()
        opt.step()
        print(f"train step {step} loss {loss.item():.5f}")
    model.eval()
    for epsilon in [0, 0.05, 0.1, 0.2]:
        correct = 0
        adv_loss = 0.0
        for i in range(len(data_all)):
            data, target = data_all[i : i + 1].clone(), target_all[i : i + 1]
            data.requires_grad = True
            output = model(data)
            init_pred = output.max(1, keepdim=True)[1]
            if init_pred.item() != target.item():
                continue
            loss = F.nll_loss(output, target)
            model.zero_grad()
            loss.backward()
            data_grad = data.grad.data
            perturbed_data = fgsm_attack(data, epsilon, data_grad)
            output = model(perturbed_data)
            adv_loss += F.nll_loss(output, target).item()
            final_pred = output.max(1, keepdim=True)[1]
            if final_pred.item() == target.item():
                correct += 1
        print(
            f"Epsilon: {epsilon}\tTest Accuracy = {correct} / {len(data_all)}\t"
            f"adversarial loss {adv_loss:.5f}"
        )


if __name__ == "__main__":
    main()

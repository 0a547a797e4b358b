"""An end-to-end speech recognizer trained with CTC (after AssemblyAI's "Building an end-to-end
Speech Recognition model in PyTorch" and Deep Speech 2): a strided convolution over a synthetic
log-mel "spectrogram", stacked bidirectional GRUs, a time-major log_softmax for nn.CTCLoss
with a blank symbol, per-utterance input and target lengths, zero_infinity for an utterance
too short for its transcript, AdamW with OneCycleLR, and a greedy CTC decoder scored by CER."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHABET = "_ abcdefgh"  # index 0 is the CTC blank
N_MELS = 16


class TextTransform:
    """Maps characters to integer labels and back."""

    def __init__(self):
        self.char_map = {c: i for i, c in enumerate(ALPHABET)}
        self.index_map = dict(enumerate(ALPHABET))

    def text_to_int(self, text):
        return [self.char_map[c] for c in text]

    def int_to_text(self, labels):
        return "".join(self.index_map[i] for i in labels)


class SpeechRecognitionModel(nn.Module):
    """A strided Conv1d front end over the mel bins (halving the frame rate), a stack of
    bidirectional GRUs, and a per-frame classifier over the characters plus the blank."""

    def __init__(self, n_feats, n_class, conv_dim=32, rnn_dim=32, n_rnn_layers=2, dropout=0.1):
        super().__init__()
        self.conv = nn.Conv1d(n_feats, conv_dim, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(conv_dim)
        self.rnn = nn.GRU(
            conv_dim,
            rnn_dim,
            num_layers=n_rnn_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.layer_norm = nn.LayerNorm(rnn_dim * 2)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(rnn_dim * 2, n_class)

    def forward(self, x):
        x = x.squeeze(1)  # (batch, feature, time)
        x = F.relu(self.bn(self.conv(x)))
        x = x.transpose(1, 2)  # (batch, time, feature)
        x, _ = self.rnn(x)
        x = self.dropout(F.gelu(self.layer_norm(x)))
        return self.classifier(x)  # (batch, time, n_class)


def synth_utterance(rng, text, templates):
    """Each character becomes 3-6 frames of its spectral template plus noise, with short
    silences between words and at both ends."""
    frames = [np.zeros((N_MELS, rng.integers(1, 4)))]
    for ch in text:
        if ch == " ":
            frames.append(np.zeros((N_MELS, rng.integers(2, 4))))
            continue
        n = rng.integers(3, 7)
        frames.append(np.repeat(templates[ALPHABET.index(ch)][:, None], n, axis=1))
    frames.append(np.zeros((N_MELS, rng.integers(1, 4))))
    spec = np.concatenate(frames, axis=1)
    return spec + 0.3 * rng.standard_normal(spec.shape)


def make_dataset(rng, n, templates, text_transform):
    data = []
    letters = ALPHABET[2:]
    for _ in range(n):
        words = [
            "".join(rng.choice(list(letters), rng.integers(1, 4)))
            for _ in range(rng.integers(1, 3))
        ]
        text = " ".join(words)
        data.append((synth_utterance(rng, text, templates), text_transform.text_to_int(text)))
    return data


def data_processing(data):
    """Pads spectrograms to (batch, 1, n_mels, time) and labels to (batch, max label len)."""
    spectrograms, labels, input_lengths, label_lengths = [], [], [], []
    for spec, label in data:
        spectrograms.append(torch.tensor(spec, dtype=torch.float32).transpose(0, 1))
        labels.append(torch.tensor(label))
        input_lengths.append((spec.shape[1] + 1) // 2)  # the stride-2 conv halves time
        label_lengths.append(len(label))
    spectrograms = nn.utils.rnn.pad_sequence(spectrograms, batch_first=True)
    spectrograms = spectrograms.unsqueeze(1).transpose(2, 3)
    labels = nn.utils.rnn.pad_sequence(labels, batch_first=True)
    return spectrograms, labels, input_lengths, label_lengths


def greedy_decoder(output, labels, label_lengths, text_transform, blank_label=0):
    arg_maxes = torch.argmax(output, dim=2)
    decodes, targets = [], []
    for i, args in enumerate(arg_maxes):
        decode = []
        targets.append(text_transform.int_to_text(labels[i][: label_lengths[i]].tolist()))
        for j, index in enumerate(args.tolist()):
            if index != blank_label:
                if j != 0 and index == args[j - 1]:
                    continue
                decode.append(index)
        decodes.append(text_transform.int_to_text(decode))
    return decodes, targets


def levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(reference, hypothesis):
    return levenshtein(reference, hypothesis) / max(len(reference), 1)


def main():
    parser = argparse.ArgumentParser(description="CTC speech recognition on synthetic audio")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    text_transform = TextTransform()
    templates = rng.uniform(0, 2, (len(ALPHABET), N_MELS))
    train_data = make_dataset(rng, 48, templates, text_transform)
    test_data = make_dataset(rng, 16, templates, text_transform)
    # one utterance clipped too short for its transcript: its CTC loss is infinite
    spec, label = train_data[5]
    train_data[5] = (spec[:, :4], label + label)

    model = SpeechRecognitionModel(n_feats=N_MELS, n_class=len(ALPHABET))
    print("Num Model Parameters", sum(param.nelement() for param in model.parameters()))

    optimizer = torch.optim.AdamW(model.parameters(), args.lr)
    criterion = nn.CTCLoss(blank=0, zero_infinity=True)
    batches = [
        data_processing(train_data[i : i + args.batch_size])
        for i in range(0, len(train_data), args.batch_size)
    ]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=args.lr,
        steps_per_epoch=len(batches),
        epochs=args.epochs,
        anneal_strategy="linear",
    )

    for epoch in range(1, args.epochs + 1):
        model.train()
        for batch_idx, (spectrograms, labels, input_lengths, label_lengths) in enumerate(batches):
            optimizer.zero_grad()
            output = model(spectrograms)  # (batch, time, n_class)
            output = F.log_softmax(output, dim=2)
            output = output.transpose(0, 1)  # (time, batch, n_class)
            loss = criterion(output, labels, input_lengths, label_lengths)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if batch_idx % 3 == 0:
                print(f"Train Epoch: {epoch} [{batch_idx}/{len(batches)}]\tLoss: {loss.item():.6f}")

        model.eval()
        spectrograms, labels, input_lengths, label_lengths = data_processing(test_data)
        with torch.no_grad():
            output = F.log_softmax(model(spectrograms), dim=2)  # (batch, time, n_class)
            # concatenated (1-D) targets and length tensors, summed over the batch
            flat = torch.cat([labels[i, :n] for i, n in enumerate(label_lengths)])
            test_loss = F.ctc_loss(
                output.transpose(0, 1),
                flat,
                torch.tensor(input_lengths),
                torch.tensor(label_lengths),
                reduction="sum",
            ) / len(test_data)
            decoded_preds, decoded_targets = greedy_decoder(
                output, labels, label_lengths, text_transform
            )
        test_cer = np.mean([cer(t, p) for t, p in zip(decoded_targets, decoded_preds)])
        print(f"Test set: Average loss: {test_loss.item():.4f}, Average CER: {test_cer:.4f}")
    print(f"sample: {decoded_targets[0]!r} -> {decoded_preds[0]!r}")


if __name__ == "__main__":
    main()

"""Image captioning (after yunjey/pytorch-tutorial's image_captioning, "Show and Tell"): a CNN
encoder whose feature vector goes through Linear + BatchNorm1d, an LSTM decoder fed the image
feature then the embedded caption (teacher forcing), captions sorted by length and packed with
pack_padded_sequence so the loss covers real tokens only, a padding_idx embedding, a Dataset with
a collate_fn, and a greedy sampling loop at the end. The "images" are generated shapes with a
colour, a size and a position; their captions say so."""

import argparse

import numpy as np
import torch
import torch.nn as nn
import torch.utils.data as data
from torch.nn.utils.rnn import pack_padded_sequence

COLOURS = {"red": (1.0, 0.1, 0.1), "green": (0.1, 0.9, 0.2), "blue": (0.2, 0.3, 1.0)}
SHAPES = ["square", "disc", "cross"]


class Vocabulary:
    """Simple vocabulary wrapper."""

    def __init__(self):
        self.word2idx = {}
        self.idx2word = {}
        self.idx = 0

    def add_word(self, word):
        if word not in self.word2idx:
            self.word2idx[word] = self.idx
            self.idx2word[self.idx] = word
            self.idx += 1

    def __call__(self, word):
        if word not in self.word2idx:
            return self.word2idx["<unk>"]
        return self.word2idx[word]

    def __len__(self):
        return len(self.word2idx)


def build_vocab():
    vocab = Vocabulary()
    for w in ["<pad>", "<start>", "<end>", "<unk>", "a", "big", "small", "on", "the"]:
        vocab.add_word(w)
    for w in [*COLOURS, *SHAPES, "left", "right", "top"]:
        vocab.add_word(w)
    return vocab


def draw(rng, colour, shape, big, where, size=16):
    img = 0.05 * rng.standard_normal((3, size, size))
    r = 4 if big else 2
    cx = {"left": 4, "right": 11, "top": 8}[where] + rng.integers(-1, 2)
    cy = {"left": 9, "right": 9, "top": 4}[where] + rng.integers(-1, 2)
    yy, xx = np.mgrid[0:size, 0:size]
    if shape == "square":
        m = (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
    elif shape == "disc":
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    else:
        m = ((abs(xx - cx) <= r) & (abs(yy - cy) <= 1)) | (
            (abs(yy - cy) <= r) & (abs(xx - cx) <= 1)
        )
    for c, v in enumerate(COLOURS[colour]):
        img[c][m] += v
    return img.astype(np.float32)


class ShapesDataset(data.Dataset):
    """Pairs of (image, caption token ids)."""

    def __init__(self, rng, n, vocab):
        self.items = []
        for _ in range(n):
            colour = rng.choice(list(COLOURS))
            shape = rng.choice(SHAPES)
            big = bool(rng.integers(0, 2))
            where = rng.choice(["left", "right", "top"])
            words = ["a"] + (["big"] if big else []) + [colour, shape]
            if where != "top" or rng.random() < 0.5:  # "top" objects are sometimes unplaced
                words += ["on", "the", where]
            caption = [vocab("<start>")] + [vocab(w) for w in words] + [vocab("<end>")]
            self.items.append((torch.from_numpy(draw(rng, colour, shape, big, where)), caption))

    def __getitem__(self, index):
        image, caption = self.items[index]
        return image, torch.tensor(caption)

    def __len__(self):
        return len(self.items)


def collate_fn(data):
    """Creates mini-batch tensors from the list of tuples (image, caption), sorted by caption
    length (descending) as pack_padded_sequence wants."""
    data.sort(key=lambda x: len(x[1]), reverse=True)
    images, captions = zip(*data)
    images = torch.stack(images, 0)
    lengths = [len(cap) for cap in captions]
    targets = torch.zeros(len(captions), max(lengths)).long()
    for i, cap in enumerate(captions):
        end = lengths[i]
        targets[i, :end] = cap[:end]
    return images, targets, lengths


class EncoderCNN(nn.Module):
    def __init__(self, embed_size):
        """A small conv net (trained here) stands in for the pretrained ResNet, then a linear
        projection and batch norm. No biases before the batch norms: they would cancel them."""
        super().__init__()
        layers, in_ch = [], 3
        for out_ch in (16, 32, 32):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            in_ch = out_ch
        self.cnn = nn.Sequential(*layers)
        self.linear = nn.Linear(32 * 2 * 2, embed_size, bias=False)
        self.bn = nn.BatchNorm1d(embed_size, momentum=0.01)

    def forward(self, images):
        """Extract feature vectors from input images."""
        features = self.cnn(images)
        features = features.reshape(features.size(0), -1)
        return self.bn(self.linear(features))


class DecoderRNN(nn.Module):
    def __init__(self, embed_size, hidden_size, vocab_size, num_layers, max_seq_length=12):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=0)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers, batch_first=True)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.max_seq_length = max_seq_length

    def forward(self, features, captions, lengths):
        """Decode image feature vectors and generates captions."""
        embeddings = self.embed(captions)
        embeddings = torch.cat((features.unsqueeze(1), embeddings), 1)
        packed = pack_padded_sequence(embeddings, lengths, batch_first=True)
        hiddens, _ = self.lstm(packed)
        outputs = self.linear(hiddens[0])
        return outputs

    def sample(self, features, states=None):
        """Generate captions for given image features using greedy search."""
        sampled_ids = []
        inputs = features.unsqueeze(1)
        for _ in range(self.max_seq_length):
            hiddens, states = self.lstm(inputs, states)  # hiddens: (batch_size, 1, hidden_size)
            outputs = self.linear(hiddens.squeeze(1))  # outputs:  (batch_size, vocab_size)
            _, predicted = outputs.max(1)  # predicted: (batch_size)
            sampled_ids.append(predicted)
            inputs = self.embed(predicted)  # inputs: (batch_size, embed_size)
            inputs = inputs.unsqueeze(1)  # inputs: (batch_size, 1, embed_size)
        sampled_ids = torch.stack(sampled_ids, 1)  # sampled_ids: (batch_size, max_seq_length)
        return sampled_ids


def ids_to_sentence(ids, vocab):
    words = []
    for word_id in ids:
        word = vocab.idx2word[word_id]
        words.append(word)
        if word == "<end>":
            break
    return " ".join(words)


def main():
    parser = argparse.ArgumentParser(description="image captioning on generated shapes")
    parser.add_argument("--embed_size", type=int, default=32)
    parser.add_argument("--hidden_size", type=int, default=48)
    parser.add_argument("--num_layers", type=int, default=1)
    parser.add_argument("--num_epochs", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-2)
    parser.add_argument("--log_step", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab = build_vocab()
    train_set = ShapesDataset(rng, 96, vocab)
    test_set = ShapesDataset(rng, 32, vocab)
    data_loader = data.DataLoader(
        train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate_fn
    )

    encoder = EncoderCNN(args.embed_size)
    decoder = DecoderRNN(args.embed_size, args.hidden_size, len(vocab), args.num_layers)
    criterion = nn.CrossEntropyLoss()
    params = list(decoder.parameters()) + list(encoder.parameters())
    optimizer = torch.optim.Adam(params, lr=args.learning_rate)

    total_step = len(data_loader)
    for epoch in range(args.num_epochs):
        encoder.train()
        decoder.train()
        for i, (images, captions, lengths) in enumerate(data_loader):
            # the targets are the caption tokens in packed order, without padding
            targets = pack_padded_sequence(captions, lengths, batch_first=True)[0]
            # the image feature comes first, so the decoder predicts every token (<start> too)
            features = encoder(images)
            outputs = decoder(features, captions, lengths)
            loss = criterion(outputs, targets)
            decoder.zero_grad()
            encoder.zero_grad()
            loss.backward()
            optimizer.step()
            if i % args.log_step == 0:
                print(
                    f"Epoch [{epoch}/{args.num_epochs}], Step [{i}/{total_step}], "
                    f"Loss: {loss.item():.4f}, Perplexity: {np.exp(loss.item()):5.4f}"
                )

        encoder.eval()
        decoder.eval()
        images, captions, lengths = collate_fn(list(test_set))
        with torch.no_grad():
            features = encoder(images)
            outputs = decoder(features, captions, lengths)
            targets = pack_padded_sequence(captions, lengths, batch_first=True)[0]
            test_loss = criterion(outputs, targets)
            sampled = decoder.sample(features).tolist()
        exact = sum(
            ids_to_sentence(s, vocab) == ids_to_sentence(c, vocab)
            for s, c in zip(sampled, captions.tolist())
        )
        print(f"Epoch [{epoch}] test loss: {test_loss.item():.4f} exact captions {exact}/32")
    for s, c in list(zip(sampled, captions.tolist()))[:3]:
        print(f"{ids_to_sentence(c, vocab)!r:48} -> {ids_to_sentence(s, vocab)!r}")


if __name__ == "__main__":
    main()

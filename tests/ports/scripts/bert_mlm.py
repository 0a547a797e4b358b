"""A tiny BERT pretrained by masked language modelling (after Hugging Face's run_mlm.py with
DataCollatorForLanguageModeling, and BERT's MLM head): pre-LayerNorm nn.TransformerEncoder
(norm_first, batch_first) with a key padding mask, 80/10/10 [MASK]/random/keep corruption of
15% of the non-special tokens, an output decoder tied to the token embedding, CrossEntropyLoss
ignoring label -100, AdamW with no weight decay on biases and LayerNorm weights, a linear
warmup/decay LambdaLR schedule and gradient clipping. The "corpus" cycles through the words of
one topic per sentence, so a masked token follows from its context."""

import argparse
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PAD, CLS, SEP, MASK = 0, 1, 2, 3
N_SPECIAL = 4


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size, hidden_size, max_position_embeddings, dropout):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size, padding_idx=PAD)
        self.position_embeddings = nn.Embedding(max_position_embeddings, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids):
        position_ids = torch.arange(input_ids.size(1)).unsqueeze(0)
        embeddings = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertLMPredictionHead(nn.Module):
    def __init__(self, hidden_size, vocab_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=1e-12)
        # the output weights are the input embeddings; only the bias is the head's own
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, hidden_states):
        hidden_states = self.LayerNorm(F.gelu(self.dense(hidden_states)))
        return self.decoder(hidden_states) + self.bias


class BertForMaskedLM(nn.Module):
    def __init__(self, vocab_size, hidden_size=32, num_layers=2, num_heads=4, max_len=32, p=0.1):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, hidden_size, max_len, p)
        layer = nn.TransformerEncoderLayer(
            d_model=hidden_size,
            nhead=num_heads,
            dim_feedforward=4 * hidden_size,
            dropout=0.0,  # a tiny model on a tiny corpus: dropout only on the embeddings
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(hidden_size), enable_nested_tensor=False
        )
        self.cls = BertLMPredictionHead(hidden_size, vocab_size)
        self.tie_weights()

    def tie_weights(self):
        self.cls.decoder.weight = self.embeddings.word_embeddings.weight

    def forward(self, input_ids, attention_mask, labels=None):
        hidden = self.encoder(self.embeddings(input_ids), src_key_padding_mask=attention_mask == 0)
        logits = self.cls(hidden)
        loss = None
        if labels is not None:
            loss_fct = nn.CrossEntropyLoss()  # ignore_index defaults to -100
            loss = loss_fct(logits.view(-1, logits.size(-1)), labels.view(-1))
        return loss, logits


def make_corpus(rng, n, n_topics, topic_size, min_len=6, max_len=14):
    """Each sentence picks a topic (a block of topic_size words) and cycles through its words
    from a random start, so a masked word follows from its topic and its neighbours."""
    sentences = []
    for _ in range(n):
        length = rng.integers(min_len, max_len + 1)
        topic, start = rng.integers(0, n_topics), rng.integers(0, topic_size)
        first = N_SPECIAL + topic * topic_size
        sentences.append([first + (start + i) % topic_size for i in range(length)])
    return sentences


def collate(sentences):
    """[CLS] tokens [SEP], padded to the longest, with the attention mask."""
    width = max(len(s) for s in sentences) + 2
    input_ids = torch.full((len(sentences), width), PAD, dtype=torch.long)
    for i, s in enumerate(sentences):
        input_ids[i, : len(s) + 2] = torch.tensor([CLS, *s, SEP])
    attention_mask = (input_ids != PAD).long()
    return input_ids, attention_mask


def mask_tokens(inputs, vocab_size, mlm_probability=0.15):
    """Prepare masked tokens inputs/labels for masked language modeling: 80% MASK, 10% random,
    10% original."""
    labels = inputs.clone()
    probability_matrix = torch.full(labels.shape, mlm_probability)
    special_tokens_mask = inputs < N_SPECIAL
    probability_matrix.masked_fill_(special_tokens_mask, value=0.0)
    masked_indices = torch.rand(labels.shape) < probability_matrix
    labels[~masked_indices] = -100  # we only compute loss on masked tokens

    # 80% of the time, we replace masked input tokens with [MASK]
    indices_replaced = (torch.rand(labels.shape) < 0.8) & masked_indices
    inputs = inputs.masked_fill(indices_replaced, MASK)

    # 10% of the time, we replace masked input tokens with a random word
    indices_random = (torch.rand(labels.shape) < 0.5) & masked_indices & ~indices_replaced
    random_words = torch.randint(N_SPECIAL, vocab_size, labels.shape, dtype=torch.long)
    inputs = torch.where(indices_random, random_words, inputs)

    # the rest of the time (10% of the time) we keep the masked input tokens unchanged
    return inputs, labels


def get_linear_schedule_with_warmup(optimizer, num_warmup_steps, num_training_steps):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(
            0.0,
            float(num_training_steps - current_step)
            / float(max(1, num_training_steps - num_warmup_steps)),
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)


def main():
    parser = argparse.ArgumentParser(description="tiny BERT masked language model")
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--topic-size", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    vocab_size = N_SPECIAL + args.topics * args.topic_size
    train_sentences = make_corpus(rng, 128, args.topics, args.topic_size)
    eval_sentences = make_corpus(rng, 32, args.topics, args.topic_size)
    train_batches = [
        collate(train_sentences[i : i + args.batch_size])
        for i in range(0, len(train_sentences), args.batch_size)
    ]
    eval_ids, eval_attention = collate(eval_sentences)
    # a fixed corruption of the evaluation set
    eval_inputs, eval_labels = mask_tokens(eval_ids, vocab_size, mlm_probability=0.2)

    model = BertForMaskedLM(vocab_size)
    assert model.cls.decoder.weight is model.embeddings.word_embeddings.weight
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model parameters: {n_params} (tied decoder)")

    no_decay = ["bias", "LayerNorm.weight", "norm1.weight", "norm2.weight", "norm.weight"]
    optimizer_grouped_parameters = [
        {
            "params": [
                p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)
            ],
            "weight_decay": args.weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)],
            "weight_decay": 0.0,
        },
    ]
    n_decay, n_no_decay = (len(g["params"]) for g in optimizer_grouped_parameters)
    print(f"param groups: {n_decay} with weight decay, {n_no_decay} without")
    optimizer = torch.optim.AdamW(optimizer_grouped_parameters, lr=args.lr, eps=1e-8)
    num_training_steps = args.epochs * len(train_batches)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(args.warmup_ratio * num_training_steps), num_training_steps
    )

    global_step = 0
    for epoch in range(args.epochs):
        model.train()
        tr_loss = 0.0
        for input_ids, attention_mask in train_batches:
            inputs, labels = mask_tokens(input_ids, vocab_size)
            loss, _ = model(inputs, attention_mask, labels=labels)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            tr_loss += loss.item()
            global_step += 1

        model.eval()
        with torch.no_grad():
            eval_loss, logits = model(eval_inputs, eval_attention, labels=eval_labels)
            masked = eval_labels != -100
            accuracy = (logits.argmax(-1)[masked] == eval_labels[masked]).float().mean()
        print(
            f"epoch {epoch} step {global_step} train loss: {tr_loss / len(train_batches):.6f} "
            f"eval loss: {eval_loss.item():.6f} perplexity {math.exp(eval_loss.item()):.3f} "
            f"masked acc {accuracy.item():.4f} grad norm {grad_norm.item():.4f} "
            f"lr {scheduler.get_last_lr()[0]:.6f}"
        )

    tied = model.cls.decoder.weight.data_ptr() == model.embeddings.word_embeddings.weight.data_ptr()
    print(f"decoder still tied: {tied}; bias norm loss: {model.cls.bias.norm().item():.6f}")


if __name__ == "__main__":
    main()

"""The training progress display: a live bar on terminals, plain lines in logs."""

import io

from manygrad.train.progress import Progress

ROW = {"train_loss": 0.5, "train_accuracy": 0.9, "test_accuracy": 0.8, "samples_per_s": 1e4}


class _Tty(io.StringIO):
    def isatty(self):
        return True


def _run(stream):
    p = Progress(True, "cpu", stream=stream)
    for epoch in (1, 2):
        p.start_epoch(epoch, 2, total=10)
        for step in range(1, 11):
            p.update(step, 0.5, 0.9, 1e4)
        p.end_epoch(ROW)
    p.close()
    return p, stream.getvalue()


def test_logs_get_one_line_per_epoch_and_no_carriage_returns():
    p, text = _run(io.StringIO())
    assert p._tqdm is None
    assert "\r" not in text
    assert text.splitlines() == [
        "epoch 1/2: loss 0.5000, acc 90.0%, test acc 80.0%, 10.0k/s on cpu",
        "epoch 2/2: loss 0.5000, acc 90.0%, test acc 80.0%, 10.0k/s on cpu",
    ]


def test_a_terminal_gets_a_live_bar():
    p, text = _run(_Tty())
    assert "\r" in text  # redrawn in place (tqdm, or the plain fallback without it)
    assert "epoch 2/2: loss 0.5000" in text

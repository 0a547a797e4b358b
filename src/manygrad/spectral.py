"""``stft`` and ``istft``: short-time Fourier transforms of (batches of) signals, built on
``manygrad.fft``, with gradients; PyTorch's arguments and output layout
(frequencies, frames).

Example:
    >>> spec = mg.stft(mg.randn(1000), n_fft=64, window=mg.hann_window(64), return_complex=True)
    >>> spec.shape                                   # (33, 63)
"""

from __future__ import annotations

from . import fft as _fft
from .errors import ShapeError
from .tensor import Tensor


def _window(window, n_fft: int, win_length: int, like: Tensor) -> Tensor:
    from .creation import ones

    if win_length <= 0 or win_length > n_fft:
        raise ValueError(f"stft: expected 0 < win_length <= n_fft = {n_fft}, got {win_length}")
    if window is None:
        window = ones(win_length, dtype=like.real.dtype, device=like.device)
    elif window.ndim != 1 or window.shape[0] != win_length:
        raise ShapeError(
            f"stft: expected a 1-d window of win_length = {win_length} samples, got shape "
            f"{tuple(window.shape)}"
        )
    left = (n_fft - win_length) // 2
    if left or n_fft - win_length - left:  # NOTE: a shorter window sits in the middle
        from .nn.functional import pad

        window = pad(window, (left, n_fft - win_length - left))
    return window.to(like.device)


def stft(input: Tensor, n_fft: int, hop_length=None, win_length=None, window=None,  # noqa: A002
         center: bool = True, pad_mode: str = "reflect", normalized: bool = False,
         onesided=None, return_complex=None, align_to_window=None) -> Tensor:  # fmt: skip
    """The short-time Fourier transform of a 1-d signal or a (batch, time) signal:
    ``(batch,) n_freq x n_frames`` complex values (``return_complex=True``) or with a last
    dim of 2 (real, imaginary).

    A window shorter than ``n_fft`` sits in the middle of each ``n_fft`` frame. With
    ``center=False`` and ``align_to_window=True`` frame ``m`` starts where its window
    does, at sample ``m * hop_length`` (``1 + (L - win_length) // hop_length`` frames);
    otherwise the ``n_fft`` frame starts there."""
    from .nn.functional import pad

    if center and align_to_window is not None:
        raise RuntimeError(
            "stft: align_to_window should only be set when center=False (a centered frame "
            "is already aligned to its window)"
        )

    if return_complex is None and not input.is_complex():
        raise RuntimeError(
            "stft requires the return_complex parameter be given for real inputs, and will "
            "further require that return_complex=True in a future PyTorch release."
        )
    if input.ndim not in (1, 2):
        raise ShapeError(f"stft: expected a 1-d or 2-d (batch, time) input, got {input.ndim}-d")
    hop = hop_length or n_fft // 4
    win = _window(window, n_fft, win_length or n_fft, input)
    x = input.unsqueeze(0) if input.ndim == 1 else input
    if center:
        x = pad(x.unsqueeze(1), (n_fft // 2, n_fft // 2), mode=pad_mode).squeeze(1)
    elif align_to_window and (win_length or n_fft) < n_fft:
        short = win_length or n_fft
        if x.shape[-1] < short:
            raise ShapeError(
                f"stft: the signal ({x.shape[-1]} samples) is shorter than win_length={short}"
            )
        left = (n_fft - short) // 2  # NOTE: zeros under the window's zero margins only
        x = pad(x, (left, n_fft - short - left))
    if x.shape[-1] < n_fft:
        raise ShapeError(f"stft: the signal ({x.shape[-1]} samples) is shorter than n_fft")
    frames = x.unfold(-1, n_fft, hop) * win  # (batch, frames, n_fft)
    one = (not input.is_complex() and not win.is_complex()) if onesided is None else onesided
    norm = "ortho" if normalized else "backward"
    spec = (_fft.rfft if one else _fft.fft)(frames, dim=-1, norm=norm).transpose(1, 2)
    spec = spec.squeeze(0) if input.ndim == 1 else spec
    if return_complex is False:
        from .ops.complex_ops import view_as_real

        return view_as_real(spec)
    return spec


def istft(input: Tensor, n_fft: int, hop_length=None, win_length=None, window=None,  # noqa: A002
          center: bool = True, normalized: bool = False, onesided=None, length=None,
          return_complex: bool = False) -> Tensor:  # fmt: skip
    """The signal whose ``stft`` is ``input`` (complex ``(batch,) n_freq x n_frames``), by
    overlap-add of the windowed inverse transforms divided by the summed squared window.
    A real result (``return_complex=False``) reads the first ``n_fft // 2 + 1`` bins, as
    PyTorch's does, whether or not the input is one-sided."""
    from .creation import ones
    from .nn.functional import fold

    if not input.is_complex():
        raise TypeError("istft requires a complex-valued input tensor")
    hop = hop_length or n_fft // 4
    spec = input.unsqueeze(0) if input.ndim == 2 else input
    win = _window(window, n_fft, win_length or n_fft, spec)
    norm = "ortho" if normalized else "backward"
    coef = spec.transpose(1, 2)  # (batch, frames, n_freq)
    if return_complex:
        frames = _fft.ifft(coef, dim=-1, norm=norm)
    else:  # NOTE: a real signal: its half spectrum says all (the rest is taken as conjugate)
        frames = _fft.irfft(coef[..., : n_fft // 2 + 1], n=n_fft, dim=-1, norm=norm)
    count = frames.shape[1]
    total = n_fft + hop * (count - 1)

    def overlap_add(cols):  # (batch, frames, n_fft) -> (batch, total)
        out = fold(cols.transpose(1, 2), (1, total), (1, n_fft), stride=(1, hop))
        return out.reshape(cols.shape[0], total)

    fw = frames * win
    if fw.is_complex():
        from .ops.complex_ops import complex as make_complex

        y = make_complex(overlap_add(fw.real), overlap_add(fw.imag))
    else:
        y = overlap_add(fw)
    env = overlap_add((win * win).reshape(1, 1, n_fft) * ones(1, count, 1, device=win.device,
                                                              dtype=win.dtype))  # fmt: skip
    start = n_fft // 2 if center else 0
    end = total - n_fft // 2 if center else total
    if length is not None:
        end = start + length
    env = env[:, start:end]
    if bool((env.abs() < 1e-11).any()):
        raise RuntimeError(
            "istft: the window's overlap-add envelope is zero somewhere (the NOLA condition "
            "fails): use a window and hop_length whose squared windows overlap everywhere"
        )
    y = y[:, start:end] / env
    if length is not None and y.shape[-1] < length:
        from .nn.functional import pad

        y = pad(y, (0, length - y.shape[-1]))
    return y.squeeze(0) if input.ndim == 2 else y


__all__ = ["stft", "istft"]

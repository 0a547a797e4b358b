"""Video clips decoded lazily with PyAV: fixed-length clips, stride and frame rate."""

from __future__ import annotations

import os
import warnings
from fractions import Fraction

import numpy as np

from manygrad.data.dataset import Dataset
from manygrad.errors import ShapeError

from .images import read_pairs
from .walk import find_files

__all__ = ["VIDEO_EXTENSIONS", "VideoFolder", "VideoList"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


class CorruptFileError(ValueError):
    """A video could not be decoded; the message names the file and the sample index."""


def _av():
    try:
        import av
    except ImportError as e:
        raise ImportError("video support needs PyAV: pip install 'manygrad[video]'") from e
    return av


def probe(path: str) -> tuple[int, float, int, int]:
    """(frame count, frames per second, height, width) of a video's first video stream."""
    av = _av()
    with av.open(path) as c:
        if not c.streams.video:
            raise CorruptFileError(f"video {path} has no video stream")
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0) or 25.0
        n = int(s.frames or 0)
        if n <= 0:  # NOTE: some containers store no count: count packets, no decoding
            n = sum(1 for p in c.demux(s) if p.size)
        return n, fps, s.codec_context.height, s.codec_context.width


class _VideoDataset(Dataset):
    def _setup(self, files, labels, clip_len, stride, step_between_clips, frame_rate, size,
               mean, std, transform, layout, skip_unreadable, what):  # fmt: skip
        if layout not in ("TCHW", "CTHW"):
            raise ValueError(f"{what}: layout must be 'TCHW' or 'CTHW', got {layout!r}")
        self.clip_len, self.stride, self.frame_rate = int(clip_len), int(stride), frame_rate
        self.step_between_clips = int(step_between_clips or clip_len)
        self.size = (size, size) if isinstance(size, int) else (tuple(size) if size else None)
        self.mean = None if mean is None else np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self.std = None if std is None else np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        self.transform, self.layout = transform, layout
        self.videos, self.labels, self.info = [], [], []
        for f, lab in zip(files, labels):
            try:
                info = probe(f)
            except Exception as e:
                msg = f"{what}: cannot read video {f}: {type(e).__name__}: {e}"
                if not skip_unreadable:
                    raise CorruptFileError(
                        msg + " (pass skip_unreadable=True to leave it out)"
                    ) from e
                warnings.warn(msg + "; left out", stacklevel=3)
                continue
            self.videos.append(f)
            self.labels.append(lab)
            self.info.append(info)
        if not self.videos:
            raise FileNotFoundError(f"{what}: no readable videos")
        sizes = {(h, w) for _, _, h, w in self.info}
        if len(sizes) > 1 and self.size is None and transform is None:
            raise ShapeError(
                f"{what}: videos have different frame sizes {sorted(sizes)}; pass size=(H, W) "
                "so that clips can be batched"
            )
        self.clips = []  # (video index, first frame, native step)
        for v, (n, fps, _, _) in enumerate(self.info):
            step = self.stride * (fps / frame_rate if frame_rate else 1.0)
            span = round((self.clip_len - 1) * step)
            hop = max(1, round(self.step_between_clips * (fps / frame_rate if frame_rate else 1)))
            self.clips += [(v, s, step) for s in range(0, max(0, n - span), hop)]
        if not self.clips:
            raise ShapeError(
                f"{what}: every video is shorter than one clip ({self.clip_len} frames with "
                f"stride {self.stride}); use a smaller clip_len or stride"
            )
        self.targets = [self.labels[v] for v, _, _ in self.clips]

    def __len__(self) -> int:
        return len(self.clips)

    def _frames(self, path: str, wanted: list[int], index: int) -> list[np.ndarray]:
        av = _av()
        need = sorted(set(wanted))
        got: dict[int, np.ndarray] = {}
        try:
            with av.open(path) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                fps = Fraction(s.average_rate or s.guessed_rate or 25)
                tb = s.time_base
                start = s.start_time or 0
                if need[0] > 0 and tb:
                    # NOTE: seek to the keyframe before the first frame, then decode forward
                    c.seek(start + int(need[0] / fps / tb), stream=s, backward=True)
                    k = None
                else:
                    k = -1
                for frame in c.decode(s):
                    if k is not None:
                        k += 1
                        i = k
                    elif frame.pts is None:
                        break
                    else:
                        i = round((frame.pts - start) * tb * fps)
                    if i > need[-1]:
                        break
                    if i in need and i not in got:
                        got[i] = frame.to_ndarray(format="rgb24")
                if len(got) < len(need) and k is None:  # irregular timestamps: count instead
                    c.seek(0, stream=s)  # irregular timestamps: rewind and count frames
                    got = {}
                    for k, frame in enumerate(c.decode(s)):
                        if k > need[-1]:
                            break
                        if k in need:
                            got[k] = frame.to_ndarray(format="rgb24")
        except Exception as e:
            raise CorruptFileError(
                f"cannot decode video {path} (sample index {index}): {type(e).__name__}: {e}"
            ) from e
        missing = [i for i in need if i not in got]
        if missing:
            raise CorruptFileError(
                f"video {path} (sample index {index}) ended before frame {missing[0]} of its "
                f"clip; the file may be truncated (got {len(got)} of {len(need)} frames)"
            )
        return [got[i] for i in wanted]

    def __getitem__(self, index: int):
        v, first, step = self.clips[index]
        wanted = [first + round(k * step) for k in range(self.clip_len)]
        frames = self._frames(self.videos[v], wanted, index)
        if self.size is not None:
            from manygrad.data.transforms import require_pillow

            pil_image = require_pillow()
            h, w = self.size
            frames = [np.asarray(pil_image.fromarray(f).resize((w, h), 2)) for f in frames]
        clip = np.stack(frames).astype(np.float32) * np.float32(1 / 255)  # (T, H, W, C)
        clip = np.ascontiguousarray(clip.transpose(0, 3, 1, 2))  # (T, C, H, W)
        if self.mean is not None:
            clip -= self.mean
        if self.std is not None:
            clip /= self.std
        if self.layout == "CTHW":
            clip = np.ascontiguousarray(clip.transpose(1, 0, 2, 3))
        if self.transform is not None:
            clip = self.transform(clip)
        return clip, self.labels[v]


class VideoFolder(_VideoDataset):
    """Clips of the videos in one subfolder per class (``root/<class>/<video>.mp4``).

    A sample is ``(clip, class_index)``: the clip a float32 array (T, C, H, W) in [0, 1]
    (then normalized if ``mean``/``std`` are given). Frames are decoded only when a clip
    is asked for, seeking to the nearest keyframe.

    Args:
        root: folder of class folders.
        clip_len: frames per clip (default 8).
        stride: take every ``stride``-th frame (at ``frame_rate``) (default 1).
        step_between_clips: frames from one clip start to the next (default clip_len).
        frame_rate: resample to this many frames per second (default: the video's).
        size: resize frames to (H, W) (needed when videos differ in size).
        mean, std: per-channel normalization.
        transform: callable on the clip array.
        layout: "TCHW" (default) or "CTHW" (for 3-D convolutions).
        skip_unreadable: leave out (with a warning) videos that cannot be opened.

    Example:
        >>> ds = mg.data.VideoFolder("clips/", clip_len=16, frame_rate=8, size=(112, 112))
    """

    def __init__(self, root, clip_len: int = 8, stride: int = 1, step_between_clips=None,
                 frame_rate: float | None = None, size=None, mean=None, std=None,
                 transform=None, layout: str = "TCHW", extensions=VIDEO_EXTENSIONS,
                 skip_unreadable: bool = False):  # fmt: skip
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"VideoFolder: {self.root} is not a folder")
        self.classes = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        if not self.classes:
            raise FileNotFoundError(f"VideoFolder: no class folders in {self.root}")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        files, labels, empty = [], [], []
        exts = tuple(e.lower() for e in extensions)
        for c in self.classes:
            d = os.path.join(self.root, c)
            found = find_files(d, exts, "VideoFolder", recursive=False)
            if not found:
                empty.append(c)
            files += found
            labels += [self.class_to_idx[c]] * len(found)
        if empty:
            raise FileNotFoundError(
                f"VideoFolder: class folder(s) {empty} in {self.root} hold no videos"
            )
        self._setup(files, labels, clip_len, stride, step_between_clips, frame_rate, size,
                    mean, std, transform, layout, skip_unreadable, "VideoFolder")  # fmt: skip


class VideoList(_VideoDataset):
    """Clips of videos listed with labels in a CSV (``path,label``) or JSON file.

    Args:
        file: the list; relative paths start at ``root`` (default: the list's folder).
        root: base folder.
        **kwargs: as for ``VideoFolder`` (clip_len, stride, frame_rate, size, ...).

    Example:
        >>> ds = mg.data.VideoList("train.csv", clip_len=8)
    """

    def __init__(self, file, root=None, clip_len: int = 8, stride: int = 1,
                 step_between_clips=None, frame_rate: float | None = None, size=None,
                 mean=None, std=None, transform=None, layout: str = "TCHW",
                 skip_unreadable: bool = False):  # fmt: skip
        file = os.fspath(file)
        root = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(file))
        rows = read_pairs(file, "VideoList")
        raw = [lab for _, lab in rows]
        if all(str(v).lstrip("-").isdigit() for v in raw):
            labels = [int(v) for v in raw]
            self.classes = sorted(set(labels))
        else:
            self.classes = sorted(set(map(str, raw)))
            labels = [self.classes.index(str(v)) for v in raw]
        files = [os.path.join(root, p) for p, _ in rows]
        self._setup(files, labels, clip_len, stride, step_between_clips, frame_rate, size,
                    mean, std, transform, layout, skip_unreadable, "VideoList")  # fmt: skip

"""Preview GIFs: a small looping GIF of a video's first seconds, under ``RUN_DIR/thumbs/``.

The standard "video in an email" is a linked animated GIF (or a poster frame with a play
button): ``results.csv``'s ``preview_gif`` names this file and the report shows it. Made with
PyAV like the poster frames (``thumbnails``): FFmpeg's ``gif`` encoder and muxer write it, so no
imaging library is needed; the muxer writes the ``NETSCAPE2.0`` loop block with a count of 0,
so mail clients loop it forever. Frames are taken every ``1 / fps`` seconds of the first
``seconds`` of the video, scaled to ``width_px`` (the height keeps the aspect ratio), in FFmpeg's
fixed 256-colour palette (``rgb8``): a few KB per second at 240 px, small enough to inline in
a mail.

``[report] preview_gif`` switches it off; ``gif_width_px``, ``gif_seconds`` and ``gif_fps`` size
it (``config.ReportConfig``). The run makes each GIF after its video's download, in a worker
thread of its own (``run.stages.assets``), so it never holds up the next row's render. A GIF
already newer than its video is kept. A video PyAV cannot read gets no GIF: ``preview_gif``
returns None, nothing here raises for a bad video.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.files import PRIVATE_FILE_MODE, make_private_dir
from orchestrator.report.thumbnails import THUMBS_DIR, file_stem

if TYPE_CHECKING:  # PyAV is imported when a GIF is made: ~0.1 s a process otherwise
    import av

    from orchestrator.config import ReportConfig  # pydantic: not for `status`


@dataclass(frozen=True)
class GifSize:
    """How big a preview GIF is: its width (the height follows the video's aspect ratio), how
    many seconds of the video's start it shows, and its frames per second (the defaults are
    ``[report]``'s: ``gif_size``)."""

    width_px: int
    seconds: float
    fps: int


def gif_size(config: ReportConfig) -> GifSize:
    """The ``GifSize`` that ``[report]`` sets."""
    return GifSize(config.gif_width_px, config.gif_seconds, config.gif_fps)


def gif_name(video_file: str) -> str:
    """``videos/cust-1.mp4`` → ``thumbs/cust-1.gif`` (relative to the run directory)."""
    return f"{THUMBS_DIR}/{file_stem(video_file)}.gif"


def preview_gif(video: Path, gif: Path, size: GifSize) -> Path | None:
    """Write ``gif`` from ``video``'s first ``size.seconds`` unless an up-to-date one exists;
    None: the video is unreadable (or has no frames)."""
    import av.error

    try:
        if gif.exists() and gif.stat().st_mtime >= video.stat().st_mtime:
            return gif
    except OSError:
        return None
    make_private_dir(gif.parent)
    tmp = gif.with_name(f".{gif.name}.tmp")
    try:
        frames = _write_gif(video, tmp, size)
        if frames == 0:
            tmp.unlink(missing_ok=True)
            return None
        tmp.chmod(PRIVATE_FILE_MODE)  # the muxer creates it with the umask's bits
        tmp.replace(gif)
    except (av.error.FFmpegError, OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return None
    return gif


def _write_gif(video: Path, path: Path, size: GifSize) -> int:
    """Encode the GIF at ``path``; return how many frames it holds."""
    import av

    step_s = 1.0 / size.fps
    written = 0
    with av.open(str(video)) as source:
        if not source.streams.video:
            return 0
        stream = source.streams.video[0]
        width, height = _scaled(stream.width or 2, stream.height or 2, size.width_px)
        with av.open(str(path), "w", format="gif") as out:
            encoder = out.add_stream("gif", rate=size.fps)
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "rgb8"
            next_s = 0.0
            for frame in source.decode(stream):
                at_s = frame.time if frame.time is not None else next_s
                if at_s >= size.seconds:
                    break
                if at_s + 1e-6 < next_s:
                    continue
                _encode(out, encoder, frame, written, width, height, size.fps)
                written += 1
                next_s += step_s
            for packet in encoder.encode(None):
                out.mux(packet)
    return written


def _encode(
    out: av.container.OutputContainer,
    encoder: av.VideoStream,
    frame: av.VideoFrame,
    index: int,
    width: int,
    height: int,
    fps: int,
) -> None:
    image = frame.reformat(width=width, height=height, format="rgb8")
    image.pts = index
    image.time_base = Fraction(1, fps)
    for packet in encoder.encode(image):
        out.mux(packet)


def _scaled(width: int, height: int, max_width_px: int) -> tuple[int, int]:
    """The GIF's size: at most ``max_width_px`` wide, the aspect ratio kept, even numbers."""
    if width <= max_width_px:
        return width, height
    return max_width_px, max(2, round(height * max_width_px / width / 2) * 2)

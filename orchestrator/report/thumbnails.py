"""Poster frames: one JPEG per downloaded video, under ``RUN_DIR/thumbs/``, made with PyAV.

PyAV (FFmpeg's libraries, bundled in its wheels) decodes the MP4 and encodes the frame as JPEG,
so no ``ffmpeg`` binary and no imaging library are needed. The frame is the first keyframe a
little way in (``POSTER_AT_FRACTION`` of the duration, at most ``POSTER_AT_MAX_S``), past a
fade-in's black first frame when the video has a keyframe there, else the last keyframe before.
Only keyframes are decoded: a 1080p poster took ~10 ms here, against 43 ms when every frame up to
the target was decoded (the demo's 160×90 clip: ~3 ms). A poster already newer than its video is
kept, so re-writing the report of a large batch only decodes the videos downloaded since.

A video PyAV cannot read (damaged, not a video) gets no poster: ``poster_frame`` returns None and
the report shows the row without one. Nothing here raises for a bad video.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.files import PRIVATE_FILE_MODE, make_private_dir

if TYPE_CHECKING:  # PyAV is imported when a poster is made: ~0.1 s a process otherwise
    import av

THUMBS_DIR = "thumbs"
POSTER_AT_FRACTION = 0.3
POSTER_AT_MAX_S = 2.0
MAX_POSTER_WIDTH_PX = 320


def poster_name(video_file: str) -> str:
    """``videos/cust-1.mp4`` → ``thumbs/cust-1.jpg`` (relative to the run directory)."""
    return f"{THUMBS_DIR}/{file_stem(video_file)}.jpg"


def file_stem(video_file: str) -> str:
    """``Path(video_file).stem`` without making a ``Path`` (once per row per column of a
    100,000-row results.csv)."""
    name = video_file.rpartition("/")[2]
    dot = name.rfind(".")
    return name[:dot] if 0 < dot < len(name) - 1 else name


def thumbs_in(run_dir: Path | None) -> frozenset[str]:
    """The posters and GIFs ``run_dir`` holds, as ``poster_name`` and ``gif_name`` spell them:
    its thumbs folder listed once, for a whole results.csv or report (a ``stat`` per row and
    column cost more than the rest of the row's cells)."""
    if run_dir is None:
        return frozenset()
    try:
        with os.scandir(run_dir / THUMBS_DIR) as found:
            return frozenset(f"{THUMBS_DIR}/{e.name}" for e in found if e.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


def poster_frame(video: Path, poster: Path) -> Path | None:
    """Write ``poster`` (JPEG) from ``video`` unless an up-to-date one exists; None: unreadable."""
    import av.error

    try:
        if poster.exists() and poster.stat().st_mtime >= video.stat().st_mtime:
            return poster
    except OSError:
        return None
    try:
        frame = _frame_from(video)
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if frame is None:
        return None
    make_private_dir(poster.parent)
    tmp = poster.with_name(f".{poster.name}.tmp")
    try:
        _write_jpeg(frame, tmp)
        tmp.chmod(PRIVATE_FILE_MODE)  # the encoder creates it with the umask's bits
        tmp.replace(poster)
    except (av.error.FFmpegError, OSError, ValueError):
        tmp.unlink(missing_ok=True)
        return None
    return poster


def _frame_from(video: Path) -> av.VideoFrame | None:
    import av

    with av.open(str(video)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        duration_s = (
            float(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base is not None
            else 0.0
        )
        target_s = min(duration_s * POSTER_AT_FRACTION, POSTER_AT_MAX_S)
        stream.codec_context.skip_frame = "NONKEY"  # decode keyframes only: ~1 frame per video
        last: av.VideoFrame | None = None
        for frame in container.decode(stream):
            last = frame
            if frame.time is None or frame.time >= target_s:
                break
        return last


def _write_jpeg(frame: av.VideoFrame, path: Path) -> None:
    import av

    width, height = frame.width, frame.height
    if width > MAX_POSTER_WIDTH_PX:
        height = max(2, round(height * MAX_POSTER_WIDTH_PX / width / 2) * 2)
        width = MAX_POSTER_WIDTH_PX
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream("mjpeg")
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuvj420p"
        image = frame.reformat(width=width, height=height, format="yuvj420p")
        for packet in stream.encode(image):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)

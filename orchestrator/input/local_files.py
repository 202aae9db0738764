"""Which local files a manifest may make us read or upload.

A manifest's ``template``, ``text_file`` and ``video`` cells name files on this machine, and the
video-edit flow uploads its file to Pictory. A manifest from someone else must not be able to send
``~/.ssh/id_rsa`` or a ``.env`` out, so a path from a manifest is taken only when:

- resolved (``..`` and symlinks followed), it lies inside the manifest's own folder or inside a
  folder the user allowed with ``--allow-path DIR`` (repeatable);
- it is a regular file (not a folder, a device or a pipe);
- its type fits the cell: a video or audio file for ``video``, ``.txt`` for ``text_file``,
  ``.pictai`` for ``template``.

Paths the user gives on the command line (``--template FILE``) are the user's own and are not
restricted. ``LocalFiles.check`` returns a problem (for ``validate``, with file, line and field);
``LocalFiles.path`` is the guard at the moment of use.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import InputError

FileKind = Literal["video", "text", "template"]
_SUFFIXES: dict[FileKind, tuple[str, ...]] = {"text": (".txt",), "template": (".pictai",)}
_WHAT: dict[FileKind, str] = {
    "video": "a video or audio file",
    "text": "a .txt file",
    "template": "a .pictai project file",
}


@dataclass(frozen=True)
class LocalFiles:
    """The folders a manifest's paths may point into."""

    roots: tuple[Path, ...]

    @classmethod
    def for_manifest(cls, manifest: Path, allowed: Iterable[Path | str] = ()) -> LocalFiles:
        roots = [manifest.resolve().parent, *(Path(p).expanduser().resolve() for p in allowed)]
        return cls(tuple(dict.fromkeys(roots)))

    def check(self, value: str, manifest: Path, kind: FileKind) -> str | None:
        """Why the cell's path may not be read, or None when it may."""
        candidate = Path(value).expanduser()
        if not candidate.is_absolute():
            candidate = manifest.parent / candidate
        resolved = candidate.resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            spelled = Path(os.path.normpath(candidate.absolute()))  # '..' applied, no symlinks
            inside = any(spelled.is_relative_to(root) for root in self.roots)
            where = "a symlink out of" if inside else "outside"
            return (
                f"{value!r} is {where} the manifest's folder ({self.roots[0]}); a manifest may "
                "only name files beside it. Move the file there, or allow its folder with "
                "--allow-path DIR"
            )
        if not resolved.exists():
            return None  # "not found" is reported by the field's own check
        if not resolved.is_file():
            return f"{value!r} is not a regular file"
        if not _fits(resolved, kind):
            return f"{value!r} is not {_WHAT[kind]}"
        return None

    def path(self, value: str, manifest: Path, kind: FileKind) -> Path:
        """The file to read or upload; raises InputError when ``check`` has a problem."""
        problem = self.check(value, manifest, kind)
        if problem is not None:
            raise InputError(problem, file=manifest)
        candidate = Path(value).expanduser()
        return (candidate if candidate.is_absolute() else manifest.parent / candidate).resolve()


def _fits(path: Path, kind: FileKind) -> bool:
    if kind == "video":
        guessed, _ = mimetypes.guess_type(path.name)
        return guessed is not None and guessed.split("/")[0] in ("video", "audio")
    return path.suffix.lower() in _SUFFIXES[kind]

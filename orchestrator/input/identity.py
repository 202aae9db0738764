"""A manifest row's identity and the file name its video is saved under.

Identity: a row's ``id`` when given (a safe token: a letter or digit, then letters, digits,
``-``, ``_``, ``.``; at most 128 characters); otherwise ``r-`` and the first 16 hex digits of
sha256(template sha256 + canonical JSON of the variables, keys and values NFC-normalised and
stripped, keys sorted). Reordering, adding or editing *other* rows never changes a row's identity.

Output names (:func:`safe_output_name`; with ``--name PATTERN`` the pattern names rows without
``output`` instead: :mod:`.names`): the ``output`` value, else the ``id``, else (a batch
begun by this version: ``ManifestOptions.readable_names``) a readable name made of the row's line,
the slug of its first non-empty variable and the first 8 hex digits of its identity digest
(``12-anna-muller-c40c595d.mp4``, :func:`readable_name`), else (a batch begun before) the identity
(``r-c40c595d87a4aa86.mp4``). The line and the slug say which row it is; the digest keeps the
name of a new row from ever meeting a delivered video's when an edit moves rows to other lines
(a delivered row keeps the file it was recorded with). The result must
be a plain file name inside the output folder, so it is rejected (never silently repaired) when it
is an absolute path, contains ``..`` as a path part, a ``/`` or ``\\``, a control character, one of
``< > : " | ? *``, starts with ``.`` (hidden; our partial downloads use that prefix), or is a
Windows device name (``CON``, ``NUL``, ``COM1``...). ``.mp4`` is appended unless the name already
ends with ``.mp4`` (any case). The final name is at most 150 characters. Two names that differ only
in case or Unicode normalisation are the same file on Windows and macOS: validate treats them as
duplicates.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import ManifestError
from orchestrator.input.row import ManifestRow

MAX_ID_CHARS = 128
MAX_OUTPUT_NAME_CHARS = 150
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_WINDOWS_CHARS = '<>:"|?*'
_BAD_CHAR = re.compile(r'[\x00-\x1f\x7f-\x9f<>:"|?*]')  # control characters (Unicode Cc) too
_PLAIN_NAME = re.compile(r"(?!(?i:con|prn|aux|nul|com\d|lpt\d)(?:[ .]|$))[A-Za-z0-9][\w .-]*")
"""Fast path: names that obviously pass every rule below (no separators, dots only inside)."""
_json_str = json.encoder.encode_basestring
"""JSON string literal, as ``json.dumps(ensure_ascii=False)`` writes it (C speed)."""
MAX_SLUG_CHARS = 40
READABLE_TAG_CHARS = 8
_WORD = re.compile(r"[a-z0-9]+")
_SPELLED = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L"}
    | {"đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i"}
)
"""Letters NFKD does not take apart into an ASCII letter and accents."""
_IDENTITY_FILE = re.compile(r"r-[0-9a-f]{16}\.mp4")
_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)]
)


def id_problem(row_id: str) -> str | None:
    """Why ``row_id`` is not a safe token, or None when it is."""
    if len(row_id) > MAX_ID_CHARS:
        return f"id is {len(row_id)} characters; the limit is {MAX_ID_CHARS}"
    if not _SAFE_ID.fullmatch(row_id):
        return (
            f"id {row_id!r} must start with a letter or digit and hold only letters, digits, "
            "'-', '_' and '.'"
        )
    return None


def row_identity(
    row: ManifestRow, template_sha256: str, *, manifest_path: Path | None = None
) -> str:
    """The row's stable identity (see the module docstring). Raises on an unsafe ``id``."""
    if row.id is not None:
        problem = id_problem(row.id)
        if problem is not None:
            raise ManifestError(problem, file=manifest_path, line=row.line, field="id")
        return row.id
    canonical = _canonical(row.variables)
    digest = hashlib.sha256((template_sha256 + canonical).encode("utf-8")).hexdigest()
    return "r-" + digest[:16]


def variables_digest(variables: Mapping[str, str]) -> str:
    """A short digest of a row's values as normalised for its identity: what a video was made
    from. Recorded with every render (``render_intent``), so a rerun can tell an edited row."""
    return hashlib.sha256(_canonical(variables).encode("utf-8")).hexdigest()[:16]


def _canonical(variables: Mapping[str, str]) -> str:
    pairs = sorted([(k.strip(), v.strip()) for k, v in variables.items()])
    canonical = "{" + ",".join([_json_str(k) + ":" + _json_str(v) for k, v in pairs]) + "}"
    if not canonical.isascii():  # ASCII is already NFC; only other text needs normalising
        pairs = sorted([(_nfc(k), _nfc(v)) for k, v in pairs])
        canonical = "{" + ",".join([_json_str(k) + ":" + _json_str(v) for k, v in pairs]) + "}"
    return canonical


def readable_name(row: ManifestRow, identity: str) -> str:
    """``LINE-SLUG-TAG`` (without ``.mp4``) for a row without ``id`` or ``output``: its line, the
    slug of its first non-empty variable (``slug``; left out when nothing of it is ASCII), and
    the first 8 hex digits of its identity (``r-`` + 16). The same file gives the same names."""
    first = next((value for value in row.variables.values() if value.strip()), "")
    parts = (str(row.line), slug(first), identity.removeprefix("r-")[:READABLE_TAG_CHARS])
    return "-".join(part for part in parts if part)


def slug(text: str) -> str:
    """Lower-case ASCII words joined by ``-``, at most ``MAX_SLUG_CHARS`` (whole words when they
    fit): accents dropped, a few letters spelled out (``ß`` ``ss``, ``ø`` ``o``, ``ł`` ``l``),
    anything else left out. ``Anna Müller`` → ``anna-muller``."""
    plain = unicodedata.normalize("NFKD", text.translate(_SPELLED)).encode("ascii", "ignore")
    words = _WORD.findall(plain.decode("ascii").lower())
    out = ""
    for word in words:
        joined = f"{out}-{word}" if out else word
        if len(joined) > MAX_SLUG_CHARS:
            break
        out = joined
    return out or (words[0][:MAX_SLUG_CHARS] if words else "")


def identity_named(name: str) -> bool:
    """Whether a video's file name is an identity (``r-`` + 16 hex digits + ``.mp4``): how a
    batch begun before readable names names its rows without ``id``."""
    return _IDENTITY_FILE.fullmatch(name) is not None


def output_name(
    row: ManifestRow, identity: str, *, readable: bool = False
) -> tuple[str, str | None]:
    """``(name, problem)``: the file name for the row's video and why it is unsafe (or None).
    ``readable``: a row without ``id`` or ``output`` gets ``readable_name`` (else its identity)."""
    if row.output is not None:
        name = row.output.strip()
    elif readable and row.id is None:
        name = readable_name(row, identity)
    else:
        name = identity.strip()
    if not name.isascii():
        name = _nfc(name)
    problem = None if _PLAIN_NAME.fullmatch(name) else _output_problem(name)
    if not name.lower().endswith(".mp4"):
        name += ".mp4"
    if problem is None and len(name) > MAX_OUTPUT_NAME_CHARS:
        problem = f"file name is {len(name)} characters; the limit is {MAX_OUTPUT_NAME_CHARS}"
    return name, problem


def safe_output_name(
    row: ManifestRow, identity: str, *, manifest_path: Path | None = None, readable: bool = False
) -> str:
    """The plain file name (ending ``.mp4``) the row's video is saved under. Raises when unsafe."""
    name, problem = output_name(row, identity, readable=readable)
    if problem is not None:
        field = "output" if row.output is not None else "id"
        raise ManifestError(problem, file=manifest_path, line=row.line, field=field)
    return name


def _output_problem(name: str) -> str | None:
    plain = (
        "give a plain file name such as 'anna-smith.mp4'; videos always go into the run's folder"
    )
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return f"{name!r} is an absolute path; {plain}"
    if ".." in re.split(r"[/\\]", name):
        return f"{name!r} climbs out of the output folder with '..'; {plain}"
    if "/" in name or "\\" in name:
        return f"{name!r} contains a path separator; {plain}"
    bad = _BAD_CHAR.search(name)
    if bad and bad.group() not in _WINDOWS_CHARS:
        return f"the name contains the control character U+{ord(bad.group()):04X}; remove it"
    if bad:
        return f"the name contains {bad.group()!r}, which Windows does not allow in file names"
    if name.startswith("."):
        return f"{name!r} starts with '.', which hides the file; remove the leading dot"
    if name.split(".")[0].strip().upper() in _WINDOWS_NAMES:
        return f"{name.split('.')[0]!r} is a reserved device name on Windows; choose another name"
    return None


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)

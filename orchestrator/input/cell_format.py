"""A workbook cell as the user sees it: its value shown through its number format.

openpyxl gives a cell's raw value (``0.2``, ``datetime(2026, 3, 1)``, ``1234.5``) and its
``number_format`` (``0%``, ``dd/mm/yyyy``, ``#,##0.00``). :func:`cell_text` applies the common
formats the way Excel shows them:

- General: integers without ``.0``, other numbers with up to 15 significant digits (``0.3``, not
  ``0.30000000000000004``); ``TRUE`` / ``FALSE`` for booleans.
- Fixed decimals and thousands separators: ``0``, ``0.00``, ``#,##0``, ``#,##0.00``, with literal
  text around them (``"$"#,##0.00``, ``[$€-407] #,##0``, ``0.0 "kg"``).
- Percentages: ``0%``, ``0.0%``.
- Scientific: ``0.00E+00``.
- Dates and times: ``yyyy yy mmmm mmm mm m dddd ddd dd d hh h mm ss AM/PM`` in any order with any
  separators (``dd/mm/yyyy``, ``mmm d, yyyy``, ``yyyy-mm-dd hh:mm``); ``m`` after an hour or before
  seconds means minutes, as in Excel.

A format with sections (``positive;negative;zero``) uses the first, with ``-`` for negatives;
colours (``[Red]``) and locale tags are dropped. Fractions, elapsed times (``[h]:mm``) and other
formats fall back to General, as do numbers no format can show (infinite, or beyond a double).
Text cells are returned as they are. At most ``MAX_DECIMALS`` decimals are shown, as in Excel,
so a hostile format cannot make every cell a million digits long.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal

MAX_DECIMALS = 30
"""Excel's own limit on the decimals of a number format."""
_WIDE = Context(prec=400)
"""Enough digits for any finite double (309 before the point) and ``MAX_DECIMALS`` after."""

_TOKEN = re.compile(
    r"yyyy|yy|mmmmm|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|am/pm|a/p|\.0+|\"[^\"]*\"|\\.|.",
    re.IGNORECASE,
)
_DATE_CODES = re.compile(r"[ymdhs]", re.IGNORECASE)
_BRACKETS = re.compile(r"\[[^\]]*\]")
_NUMBER = re.compile(r"[#0?,.]*[0#?][#0?,.]*")


def cell_text(value: object, number_format: str | None) -> str:
    """``value`` as the user sees it under ``number_format`` (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    fmt = number_format or "General"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return _date_text(value, fmt)
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, int | float):
        if fmt == "General" or fmt == "@":
            return general(value)
        try:
            number = float(value)
        except OverflowError:  # an int past a double
            return general(value)
        return _number_text(number, fmt) if math.isfinite(number) else general(value)
    return str(value)


def general(value: int | float) -> str:
    """Excel's General format: ``42``, ``0.3``, ``1234.5``."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.15g}"


def _section(fmt: str) -> str:
    first = fmt.split(";", 1)[0]
    return _BRACKETS.sub(lambda m: _currency(m.group()), first)


def _currency(bracket: str) -> str:
    """``[$€-407]`` → ``€``; colours and conditions → nothing."""
    if bracket.startswith("[$"):
        return bracket[2:-1].split("-", 1)[0]
    return ""


def _literal(token: str) -> str:
    if token.startswith('"'):
        return token[1:-1]
    if token.startswith("\\"):
        return token[1:]
    if token in ("_", "*"):
        return ""
    return token


def _number_text(value: float, fmt: str) -> str:
    section = _section(fmt)
    if "[h" in fmt.lower() or "/" in section.replace('"/"', ""):
        return general(value)  # elapsed time, fractions: not supported
    bare = re.sub(r'"[^"]*"|\\.|_.|\*.', "", section)
    if _DATE_CODES.search(bare):
        return general(value)  # a date format on a plain number: openpyxl did not convert it
    match = _NUMBER.search(bare)
    if match is None:
        return general(value)
    code = match.group()
    scientific = re.search(r"E\+(0+)", bare, re.IGNORECASE)
    if "%" in bare:
        value *= 100
        if not math.isfinite(value):
            return general(value / 100)
    decimals = min(len(code.split(".", 1)[1]) if "." in code else 0, MAX_DECIMALS)
    body = abs(value)
    if scientific:
        digits = f"{body:.{decimals}E}"
        mantissa, exponent = digits.split("E")
        power = exponent[1:].lstrip("0").zfill(len(scientific.group(1)))
        shown = f"{mantissa}E{exponent[0]}{power}"
    else:  # Excel rounds halves away from zero: 0.5 under "0" shows 1
        rounded = Decimal(repr(body)).quantize(
            Decimal(1).scaleb(-decimals), ROUND_HALF_UP, context=_WIDE
        )
        shown = f"{rounded:,f}" if "," in code.split(".", 1)[0] else f"{rounded:f}"
    if value < 0 and float(shown.replace(",", "").split("E")[0] or 0) != 0:
        shown = "-" + shown
    # Put the number back among the section's literal text (currency, units, the % sign).
    out: list[str] = []
    placed = False
    rest = section
    while rest:
        token = re.match(r'"[^"]*"|\\.|_.|\*.|[#0?,.]+|E\+0+|.', rest, re.IGNORECASE)
        assert token is not None
        text = token.group()
        rest = rest[len(text) :]
        if re.fullmatch(r"[#0?,.]+|E\+0+", text, re.IGNORECASE) and any(c in text for c in "#0?"):
            if not placed:
                out.append(shown)
                placed = True
            continue
        if re.fullmatch(r"E\+0+", text, re.IGNORECASE):
            continue
        out.append(_literal(text))
    return "".join(out).strip()


def _date_text(value: dt.date | dt.time, fmt: str) -> str:
    section = _section(fmt)
    if not _DATE_CODES.search(re.sub(r'"[^"]*"|\\.', "", section)):
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ") if value.time() != dt.time() else str(value.date())
        return value.isoformat()
    tokens = _TOKEN.findall(section)
    twelve_hour = any(t.lower() in ("am/pm", "a/p") for t in tokens)
    out: list[str] = []
    for i, token in enumerate(tokens):
        low = token.lower()
        if low.startswith("m") and low in ("m", "mm") and _is_minute(tokens, i):
            out.append(f"{_get(value, 'minute'):0{len(low)}d}")
        else:
            out.append(_date_token(value, token, twelve_hour))
    return "".join(out)


def _is_minute(tokens: list[str], i: int) -> bool:
    """``m``/``mm`` mean minutes right after an hour or right before seconds (Excel's rule)."""
    codes = [(j, t.lower()) for j, t in enumerate(tokens) if _DATE_CODES.fullmatch(t[0])]
    position = next(k for k, (j, _) in enumerate(codes) if j == i)
    before = codes[position - 1][1] if position > 0 else ""
    after = codes[position + 1][1] if position + 1 < len(codes) else ""
    return before.startswith("h") or after.startswith("s")


def _get(value: dt.date | dt.time, name: str) -> int:
    return int(getattr(value, name, 0))


def _date_token(value: dt.date | dt.time, token: str, twelve_hour: bool) -> str:
    low = token.lower()
    day = value if isinstance(value, dt.date) else None
    if day is not None and low in ("yyyy", "yy", "mmmmm", "mmmm", "mmm", "mm", "m"):
        return {
            "yyyy": f"{day.year:04d}",
            "yy": f"{day.year % 100:02d}",
            "mmmmm": day.strftime("%B")[:1],
            "mmmm": day.strftime("%B"),
            "mmm": day.strftime("%b"),
            "mm": f"{day.month:02d}",
            "m": str(day.month),
        }[low]
    if day is not None and low in ("dddd", "ddd", "dd", "d"):
        return {
            "dddd": day.strftime("%A"),
            "ddd": day.strftime("%a"),
            "dd": f"{day.day:02d}",
            "d": str(day.day),
        }[low]
    if low in ("hh", "h"):
        hour = _get(value, "hour")
        if twelve_hour:
            hour = hour % 12 or 12
        return f"{hour:0{len(low)}d}"
    if low in ("ss", "s"):
        return f"{_get(value, 'second'):0{len(low)}d}"
    if low == "am/pm":
        return "AM" if _get(value, "hour") < 12 else "PM"
    if low == "a/p":
        return "A" if _get(value, "hour") < 12 else "P"
    if low.startswith(".") and set(low[1:]) == {"0"}:
        micro = f"{_get(value, 'microsecond'):06d}"
        return "." + micro[: len(low) - 1]
    return _literal(token)

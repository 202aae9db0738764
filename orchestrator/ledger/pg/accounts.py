"""Whose a shared batch is: the accounts ``orchestrator submit --account NAME`` binds it to, and
the batch a worker given ``--account NAME`` works (``choose_batch``).

An account is named by its users (``client-a``), not by its credentials: the name is what a
user types at ``submit`` and gives each worker of that account, beside the account's
credentials; it is stored in ``batches.accounts`` and is never a secret. A batch bound to
accounts is worked only by workers given one of its names; a batch without (``--any-account``,
and every batch submitted before batches had accounts) by any worker. Within a batch, each row
is still bound to the Pictory account of the first worker that claimed it (``rows.account``,
the credentials' digest: ``config.account_key``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import RunDirError, UserError
from orchestrator.ledger.pg.schema import Conn

ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""An account's name as users type it (``client-a``)."""
MAX_NAMED = 3
"""Batches or accounts a message names before it says how many more."""


def account_name(given: str) -> str:
    """``given`` if it can name an account (``ACCOUNT_NAME``), else UserError saying what can.
    The name is stored in the ledger, so it must not be a secret: an API key is refused."""
    if given.lower().startswith("pictai_"):
        raise UserError(
            "--account: that is an API key, which is never stored in a ledger; give the account "
            "a name of your own (e.g. client-a) and keep the key in PICTORY_API_KEY"
        )
    if not ACCOUNT_NAME.fullmatch(given):
        raise UserError(
            f"--account {given!r}: an account's name is up to 64 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (e.g. client-a)"
        )
    return given


def binding(accounts: Sequence[str] | None) -> list[str] | None:
    """What ``batches.accounts`` stores for ``accounts``: each name once, in the order given;
    None for a batch any account's workers may render."""
    if accounts is None:
        return None
    names = list(dict.fromkeys(account_name(a) for a in accounts))
    if not names:
        raise UserError("a batch bound to accounts needs at least one: --account NAME")
    return names


def stored_accounts(stored: Sequence[str] | None) -> tuple[str, ...] | None:
    """``batches.accounts`` as read back (None: any account's)."""
    return tuple(stored) if stored is not None else None


def may_render(accounts: tuple[str, ...] | None, account: str | None) -> bool:
    """Whether a worker given ``account`` (its ``--account``, or None) may claim the rows of a
    batch bound to ``accounts`` (None: any account's)."""
    return accounts is None or account in accounts


async def refuse_unbound(conn: Conn) -> None:
    """Refuse a batch for any account that was not asked for (``submit`` without ``--account``
    nor ``--any-account``) in a ledger that holds batches bound to accounts: there, a forgotten
    ``--account`` would hand a client's rows to every other client's workers."""
    names = [
        str(r["account"])
        for r in await conn.fetch(
            "SELECT DISTINCT unnest(accounts) AS account FROM batches ORDER BY 1 LIMIT $1",
            MAX_NAMED + 1,
        )
    ]
    if names:
        raise UserError(
            f"the ledger holds batches bound to accounts ({listed(names)}): name the accounts "
            "whose workers may render this one with --account NAME (repeatable), or give "
            "--any-account to leave it to every account's workers"
        )


@dataclass(frozen=True)
class Chosen:
    """The batch a worker works (``choose_batch``)."""

    batch_id: int
    name: str
    passed_over: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Other accounts' batches with rows to do, oldest first, as ``(name, accounts)``: this
    worker leaves them alone."""


async def choose_batch(conn: Conn, name: str | None, account: str | None, where: str) -> Chosen:
    """The batch a worker given ``account`` (its ``--account``, or None) works: batch ``name``,
    refused in one line naming it and its accounts when they do not include ``account``;
    without a name, the oldest batch it may render with rows still pending, else the oldest it
    may render (its rows are all finished: the worker ends at once), passing over other
    accounts' batches. When it may render none, RunDirError naming whose they are. ``where``:
    the database, for messages."""
    if name is not None:
        row = await conn.fetchrow("SELECT id, accounts FROM batches WHERE name = $1", name)
        if row is None:
            raise RunDirError(f"{where} holds no batch named {name!r}; see `orchestrator submit`")
        accounts = stored_accounts(row["accounts"])
        if accounts is not None and not may_render(accounts, account):
            raise RunDirError(_refusal(name, accounts, account))
        return Chosen(int(row["id"]), name)
    batches = [
        (int(r["id"]), str(r["name"]), stored_accounts(r["accounts"]), bool(r["pending"]))
        for r in await conn.fetch(
            """
            SELECT b.id, b.name, b.accounts,
                   EXISTS (SELECT 1 FROM rows r WHERE r.batch_id = b.id AND r.status = 'pending')
                   AS pending
            FROM batches b ORDER BY pending DESC, b.id
            """
        )
    ]
    if not batches:
        raise RunDirError(f"{where} holds no batch yet; submit one with `orchestrator submit`")
    own = [b for b in batches if may_render(b[2], account)]
    if not own:
        named = [f"{n!r} ({', '.join(a or ())})" for _, n, a, _ in batches]
        raise RunDirError(
            f"{where} holds no batch this worker may render: {listed(named)} "
            f"{'is' if len(named) == 1 else 'are'} bound to other accounts, and this worker "
            f"{worker_phrase(account)}"
        )
    others = tuple(
        (n, a or ()) for _, n, a, pending in batches if pending and not may_render(a, account)
    )
    return Chosen(own[0][0], own[0][1], others)


def _refusal(name: str, accounts: tuple[str, ...], account: str | None) -> str:
    bound = ("account " if len(accounts) == 1 else "accounts ") + ", ".join(accounts)
    whose = "that account" if len(accounts) == 1 else "one of them"
    option = accounts[0] if len(accounts) == 1 else "NAME"
    return (
        f"batch {name!r} is bound to {bound}, and this worker {worker_phrase(account)}: it "
        f"claims none of the batch's rows; start a worker with the credentials of {whose} "
        f"and --account {option}"
    )


def worker_phrase(account: str | None) -> str:
    """How a message names the account a worker was given: ``is on account 'client-a'``."""
    if account is None:
        return "names no account (give it --account NAME)"
    return f"is on account {account!r} (--account)"


def listed(names: Sequence[str]) -> str:
    """``names`` joined: the first ``MAX_NAMED`` of them, and how many more."""
    shown = ", ".join(names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return f"{shown} and {more} more" if more > 0 else shown

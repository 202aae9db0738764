"""``orchestrator forget`` at Pictory: the forgotten rows' jobs cleaned there too.

A processor erases every copy it made, and Pictory holds one: the values sent, the rendered
video, its preview, share and download links. So before ``run.forget`` erases anything else of
a row, it cleans each of the row's jobs its records name (previews, renders, a transcription
or highlights job; a retried row's earlier ones too) with ``DELETE /v1/jobs/{id}/clean``
(contract §5.4, ``PictoryClient.clean_job``), through a client built as a run builds it (the
run's ``[api]``, ``[limits]`` and ``[retry]``, the credentials of the environment). A job a
``cleaned`` record names (``[pictory] clean_after_download``, or an earlier ``forget``) is not
asked again; each job cleaned now gets a ``cleaned`` record, through ``record``.

- **A clean that fails** (the network, 5xx after the retries, a job still rendering) holds the
  row back: none of its traces is erased, the command ends with exit 1, and running it again
  finishes the job.
- **A job Pictory answers 404 for** counts as cleaned for this command (as
  ``clean_after_download`` counts it) but is not recorded cleaned: it may be another account's
  (the credentials in the environment are not the batch's), and running the command again with
  the right credentials asks again.
- **Left at Pictory** ([choice], docs/data.md): without credentials in the environment, with
  ``--keep-at-pictory``, or for a shared row another account rendered, the rows are still
  erased here, and the CLI names the jobs left and the command that cleans them later: the
  ledger keeps every job id of a forgotten row (``ledger.forget.KEPT``), so the same ``forget``
  run again with credentials cleans them. A batch run against the embedded simulator
  (``--simulate``) has nothing left: its jobs ended with that process.
- What cannot be cleaned is said, never hidden: a job-creating request whose answer was lost
  (``ambiguous``) may have made a job whose id was never learned, and a file uploaded for a
  video-edit row has no documented delete; Pictory's own retention removes both.

May import what ``run`` may.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestrator.api.client import PictoryClient
from orchestrator.api.limits import RateLimiter
from orchestrator.api.retry import RetryPolicy
from orchestrator.clock import Clock, RealClock
from orchestrator.config import Config, Credentials, account_key, load_credentials
from orchestrator.config.credentials import NoCredentials
from orchestrator.errors import ApiError
from orchestrator.run.traces import Erased, RowTraces

Record = Callable[[str, list[str]], Awaitable[None]]
"""Records that a row's jobs were cleaned (a ``cleaned`` record in the batch's ledger)."""


@dataclass(frozen=True)
class PictoryAccess:
    """How ``forget`` reaches the batch's jobs at Pictory: ``credentials`` at ``config``'s
    base URL, or why not (``left_why``: the jobs are left there, named)."""

    config: Config
    credentials: Credentials | None = None
    left_why: str | None = None
    simulated: bool = False
    """The batch ran against the embedded simulator: its jobs ended with that process."""
    say: Callable[[str], None] | None = None
    """Told of each retry of a clean (a slow API is not a hung command)."""

    @property
    def account(self) -> str | None:
        """The account these credentials name (``config.account_key``), as a shared batch's
        ``rows.account`` holds it."""
        if self.credentials is None:
            return None
        return account_key(self.config.api.base_url, self.credentials)


def pictory_access(
    config: Config, *, simulated: bool, keep: bool, say: Callable[[str], None] | None = None
) -> PictoryAccess:
    """The access ``forget`` has: none with ``keep`` (``--keep-at-pictory``) or under the
    embedded simulator; else the environment's credentials, as ``run`` reads them (none there:
    the jobs are left and named; half a pair of client credentials is still an error)."""
    if simulated:
        return PictoryAccess(config, simulated=True)
    if keep:
        return PictoryAccess(config, left_why="--keep-at-pictory")
    try:
        credentials = load_credentials(required=True)
    except NoCredentials:
        return PictoryAccess(config, left_why="no Pictory credentials in the environment")
    return PictoryAccess(config, credentials, say=say)


async def clean_rows(
    traced: dict[str, RowTraces],
    access: PictoryAccess,
    erased: Erased,
    record: Record,
    *,
    accounts: dict[str, str | None] | None = None,
    clock: Clock | None = None,
) -> None:
    """Clean each row's jobs not yet recorded cleaned (module docstring). A row whose clean
    failed goes to ``erased.held`` (the caller erases nothing of it); jobs not asked are in
    ``erased.left``. ``accounts``: a shared batch's row → the account that rendered it."""
    for row, found in traced.items():
        if found.lost:
            erased.notes.append(
                f"row {row}: the answer to {found.lost} request(s) was lost, so a job may exist "
                "at Pictory under an id never learned: Pictory's own retention removes it"
            )
        if found.uploads and not access.simulated:
            erased.notes.append(
                f"row {row}: {found.uploads} file(s) uploaded to Pictory's storage for it have "
                "no documented delete: Pictory's own retention removes them"
            )
    wanted = {row: found.to_clean for row, found in traced.items() if found.to_clean}
    if not wanted:
        return
    if access.simulated:
        erased.notes.append(
            "the batch ran against the embedded simulator (--simulate): its jobs ended with "
            "that process; nothing is left at Pictory"
        )
        return
    mine = access.account
    if access.credentials is None or access.left_why is not None:
        _leave(erased, wanted, access.left_why or "no credentials")
        return
    others = {r: j for r, j in wanted.items() if accounts and accounts.get(r) not in (None, mine)}
    if others:
        _leave(erased, others, "another Pictory account rendered them (its workers' credentials)")
    todo = {r: j for r, j in wanted.items() if r not in others}
    if not todo:
        return
    if erased.dry_run:
        erased.cleaned += [(row, job) for row, jobs in todo.items() for job in jobs]
        return
    async with _client(access, clock or RealClock()) as client:
        for row, jobs in todo.items():
            await _clean_row(client, row, jobs, erased, record)


async def _clean_row(
    client: PictoryClient, row: str, jobs: list[str], erased: Erased, record: Record
) -> None:
    done: list[str] = []
    try:
        for job in jobs:
            if await client.clean_job(job):
                done.append(job)
                erased.cleaned.append((row, job))
            else:
                erased.gone.append((row, job))
    except ApiError as exc:
        erased.held[row] = f"job {job}: {exc.describe()}"
    if done:
        await record(row, done)


def _leave(erased: Erased, rows: dict[str, list[str]], why: str) -> None:
    erased.left.update(rows)
    if why not in erased.left_why:
        erased.left_why.append(why)


def _client(access: PictoryAccess, clock: Clock) -> PictoryClient:
    config = access.config
    assert access.credentials is not None
    limiter = RateLimiter(
        clock,
        max_rps=config.limits.max_requests_per_s,
        max_per_minute=config.limits.max_requests_per_minute,
    )
    policy = RetryPolicy(
        max_attempts=config.retry.max_attempts,
        base_delay_s=config.retry.base_delay_s,
        max_delay_s=config.retry.max_delay_s,
    )
    say = access.say

    def on_retry(endpoint: str, kind: str, delay_s: float) -> None:
        if say is not None:
            say(f"forget: {endpoint}: {kind}; trying again in {delay_s:.1f} s")

    return PictoryClient(
        config.api,
        access.credentials,
        clock=clock,
        limiter=limiter,
        retry_policy=policy,
        on_retry=on_retry,
    )

"""The benchmark scenarios. Each returns ``{figure name: Figure}`` measured on this machine.

Scenarios (see README "Performance"): rate-bound throughput (poll and webhook mode), render-bound
throughput, overhead (CPU and memory per row against a no-latency simulator), scale (validate and
ledger replay of a million rows, peak RSS of a 10k vs a 100k-row run) and a run under faults.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    Measured,
    api_requests,
    downloaded_times,
    measure,
    orchestrator_argv,
    overall_rate,
    read_results,
    rerenders_recorded,
    steady_rate,
    write_batch,
    write_config,
    write_xlsx_batch,
)
from orchestrator.simulator.process import SimProcess

RATE_K_POLL = 4
"""API requests per row at best when polling: from-template, one preview poll, render, one poll."""
RATE_K_WEBHOOK = 2
"""At best with webhooks: from-template and render (callbacks replace the polls)."""


@dataclass(frozen=True)
class Plan:
    """Sizes and timings of one benchmark pass (``FULL`` or ``SMOKE``)."""

    rows: int = 1000
    rate_rps: float = 20.0
    preview_s: float = 2.0
    render_s: float = 6.0
    sim_profile: str = "demo"  # jitter ±1/3 of nominal
    rows_in_flight: int | None = None  # rate-bound runs; None: 4 × Little's law (R/k × job time)
    render_rows: int = 500
    render_cap: int = 10
    overhead_rows: int = 5000
    validate_rows: int = 1_000_000
    replay_rows: int = 1_000_000
    scale_rows: tuple[int, int] = (10_000, 100_000)
    retry_base_s: float = 0.5
    retry_max_s: float = 10.0
    deadline_factor: float = 10.0  # poll deadlines: this × the nominal job time
    max_resumes: int = 3  # fault run: resume with --retry-failed at most this often
    timeout_s: float = 1800.0
    fault_pass_timeout_s: float = 600.0  # a fault run past this is stopped (SIGINT) and reported
    seed: int = 1

    def describe(self) -> dict[str, Any]:
        return asdict(self)


FULL = Plan()
SMOKE = Plan(
    rows=50,
    rate_rps=100.0,
    preview_s=0.05,
    render_s=0.1,
    render_rows=50,
    render_cap=5,
    overhead_rows=50,
    validate_rows=2000,
    replay_rows=2000,
    scale_rows=(50, 100),
    retry_base_s=0.05,
    retry_max_s=0.5,
    deadline_factor=20.0,
    max_resumes=0,
    timeout_s=120.0,
    fault_pass_timeout_s=5.0,
)


@dataclass
class Figure:
    """One measured value and what it is measured against."""

    value: float | int | None
    unit: str
    bound: str = ""
    met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


Figures = dict[str, Figure]


def _user_config(
    path: Path,
    plan: Plan,
    *,
    max_rps: float,
    rows_in_flight: int,
    renders_in_flight: int,
    webhook: bool = False,
    calibration: Path | None = None,
) -> Path:
    """What a user would write for this account: its limits, polls sized to the job times, and
    the calibration profile it uses (None: none)."""
    sections: dict[str, dict[str, Any]] = {
        "limits": {
            "max_requests_per_s": max_rps,
            "max_rows_in_flight": rows_in_flight,
            "max_renders_in_flight": renders_in_flight,
            "max_downloads_in_flight": 16,
            "calibration": str(calibration) if calibration is not None else "none",
        },
        "poll": {
            "preview_interval_s": max(0.005, plan.preview_s / 4),
            "render_interval_s": max(0.005, plan.render_s / 4),
            "jitter_fraction": 0.2,
            "preview_deadline_s": plan.preview_s * plan.deadline_factor,
            "render_deadline_s": plan.render_s * plan.deadline_factor,
            "webhook_fallback_interval_s": max(1.0, (plan.preview_s + plan.render_s) * 4),
        },
        "retry": {
            "max_attempts": 8,
            "base_delay_s": plan.retry_base_s,
            "max_delay_s": plan.retry_max_s,
        },
    }
    if webhook:
        sections["webhook"] = {"enabled": True, "listen_host": "127.0.0.1"}
    return write_config(path, sections)


def _rows_in_flight(plan: Plan, k: int) -> int:
    """Enough rows at once that the rate, not the pool, binds: 4 × (R/k rows/s × job time)."""
    if plan.rows_in_flight is not None:
        return plan.rows_in_flight
    return max(50, int(plan.rate_rps / k * (plan.preview_s + plan.render_s) * 4))


def _sim_args(plan: Plan, profile: str, *, rate: float | None, cap: int | None) -> list[str]:
    args = ["--profile", profile, "--seed", str(plan.seed)]
    args += ["--preview-seconds", f"{plan.preview_s:g}", "--render-seconds", f"{plan.render_s:g}"]
    if rate is not None:
        args += ["--rate-limit", f"{rate:g}"]
    if cap is not None:
        args += ["--max-concurrent-renders", str(cap)]
    return args


def _run(
    work: Path,
    sim: SimProcess,
    manifest: Path,
    template: Path,
    config: Path,
    plan: Plan,
    *extra: str,
    may_stop: bool = False,
) -> tuple[Measured, Path]:
    run_dir = work / "run"
    argv = orchestrator_argv(
        "run",
        str(manifest),
        "--template",
        str(template),
        "--out",
        str(run_dir),
        "--config",
        str(config),
        *extra,
    )
    timeout_s = plan.fault_pass_timeout_s if may_stop else plan.timeout_s
    m = measure(argv, env=sim.env(), log=work / "stderr.log", timeout_s=timeout_s)
    if m.exit_code not in (0, 1) and not may_stop:
        raise RuntimeError(f"orchestrator run failed ({m.exit_code}):\n{m.stderr_tail}")
    return m, run_dir


def _common(m: Measured, rows: int, stats: dict[str, Any]) -> Figures:
    per_row, setup = api_requests(stats)
    total = per_row + setup
    return {
        "makespan_s": Figure(round(m.wall_s, 2), "s"),
        "api_requests_per_row": Figure(
            round(per_row / rows, 3), "req/row", "token + template upload excluded"
        ),
        "http_429": Figure(stats["rate_limited"], "count"),
        "http_429_share": Figure(round(stats["rate_limited"] / max(1, total), 5), "of requests"),
        "cpu_ms_per_row": Figure(round(m.cpu_s * 1000 / rows, 3), "ms/row"),
        "peak_rss_mb": Figure(round(m.maxrss_mb, 1), "MB"),
        "duplicate_renders": Figure(
            stats["duplicate_renders"], "count", "must be 0", stats["duplicate_renders"] == 0
        ),
    }


def _rate_bound_batch(
    work: Path, plan: Plan, k: int, *, webhook: bool
) -> tuple[Path, Path, Path, int]:
    """The rate-bound batch: manifest, template, config (R = the plan's rate, renders unbound)
    and the rows in flight it allows."""
    manifest, template = write_batch(work, plan.rows)
    rows_in_flight = _rows_in_flight(plan, k)
    config = _user_config(
        work / "config.toml",
        plan,
        max_rps=plan.rate_rps,
        rows_in_flight=rows_in_flight,
        renders_in_flight=1000,
        webhook=webhook,
    )
    return manifest, template, config, rows_in_flight


def rate_bound(work: Path, plan: Plan, *, webhook: bool) -> Figures:
    """Throughput against a request-rate limit R: rows/s vs R/k."""
    k = RATE_K_WEBHOOK if webhook else RATE_K_POLL
    manifest, template, config, rows_in_flight = _rate_bound_batch(work, plan, k, webhook=webhook)
    with SimProcess(*_sim_args(plan, plan.sim_profile, rate=plan.rate_rps, cap=1000)) as sim:
        m, run_dir = _run(
            work, sim, manifest, template, config, plan, *(["--webhook"] if webhook else [])
        )
        stats = sim.stats()
    first, times = downloaded_times(run_dir / "ledger.jsonl")
    rate, whole = steady_rate(times), overall_rate(first, times)
    bound = plan.rate_rps / k
    # The shortest possible run: k requests per row at R req/s, then the last render's own time.
    best_s = plan.rows * k / plan.rate_rps + plan.render_s
    span_s = plan.rows / whole if whole else None
    ratio = best_s / span_s if span_s else None
    figures = {
        "efficiency": Figure(
            round(ratio, 3) if ratio else None,
            "of bound",
            f">= 0.90: best makespan rows×k/R + render = {best_s:g} s over the actual one",
            ratio is not None and ratio >= 0.90,
        ),
        "rows_per_s_whole_run": Figure(
            round(whole, 3) if whole else None,
            "rows/s",
            f"first row admitted → last download; R/k = {plan.rate_rps:g}/{k} = {bound:.3f}",
        ),
        "rows_per_s_steady": Figure(
            round(rate, 3) if rate else None,
            "rows/s",
            "10–90 % of rows done; can pass R/k when early rows' requests fell before the window",
        ),
        "efficiency_steady": Figure(round(rate / bound, 3) if rate else None, "of R/k"),
        **_common(m, plan.rows, stats),
        "rows_in_flight": Figure(rows_in_flight, "config"),
    }
    share = figures["http_429_share"]
    share.bound, share.met = "< 0.01", share.value is not None and share.value < 0.01
    figures["done"] = Figure(_count(run_dir, "done"), "rows", f"of {plan.rows}")
    return figures


def render_bound(work: Path, plan: Plan, *, profile: bool = False) -> Figures:
    """Throughput against a concurrent-render cap C: rows/s vs C / render time. The config
    states the account's cap, as a user does: nothing is queued ahead at Pictory, a freed slot
    is noticed by reading at the projected end. ``profile``: with a calibration profile that
    measured the account queuing renders, so one more waits at Pictory (``api.render_slots``)."""
    cap, high_rps = plan.render_cap, 1000.0
    manifest, template = write_batch(work, plan.render_rows)
    config = _user_config(
        work / "config.toml",
        plan,
        max_rps=high_rps,
        rows_in_flight=cap * 4,
        renders_in_flight=cap,
        calibration=_queueing_profile(work, cap) if profile else None,
    )
    with SimProcess(*_sim_args(plan, plan.sim_profile, rate=high_rps, cap=cap)) as sim:
        m, run_dir = _run(work, sim, manifest, template, config, plan)
        stats = sim.stats()
    first, times = downloaded_times(run_dir / "ledger.jsonl")
    rate, whole = steady_rate(times), overall_rate(first, times)
    bound = cap / plan.render_s
    ratio = rate / bound if rate else None
    return {
        "rows_per_s": Figure(
            round(rate, 3) if rate else None,
            "rows/s",
            f"C/render = {cap}/{plan.render_s:g} s = {bound:.3f}",
        ),
        "efficiency": Figure(
            round(ratio, 3) if ratio else None,
            "of bound",
            ">= 0.90",
            ratio is not None and ratio >= 0.90,
        ),
        "rows_per_s_whole_run": Figure(
            round(whole, 3) if whole else None, "rows/s", "first row admitted → last download"
        ),
        **_common(m, plan.render_rows, stats),
        "renders_waiting_max": Figure(
            stats.get("renders_waiting_max"),
            "renders",
            "1 with a profile that measured a queue, else 0",
            stats.get("renders_waiting_max") == (1 if profile else 0),
        ),
        "done": Figure(_count(run_dir, "done"), "rows", f"of {plan.render_rows}"),
    }


def _queueing_profile(work: Path, cap: int) -> Path:
    """A calibration profile (``api.calibration``) of an account that runs ``cap`` renders at
    once and queues the next one, as ``orchestrator doctor --calibrate`` would write it."""
    from orchestrator.api.calibration import CalibrationProfile, write_profile

    path = work / "profile.toml"
    profile = CalibrationProfile(
        account="benchmark",
        base_url="http://127.0.0.1/pictoryapis",
        measured_at="2026-01-01T00:00:00Z",
        max_concurrent_renders=cap,
        cap_found=True,
        queues_renders=True,
        billable_renders=cap + 1,
    )
    write_profile(profile, path)
    return path


def _fast_config(path: Path, rows_in_flight: int = 64) -> Path:
    return write_config(
        path,
        {
            "limits": {
                "max_requests_per_s": 10000.0,
                "max_rows_in_flight": rows_in_flight,
                "max_renders_in_flight": 1000,
                "max_downloads_in_flight": 16,
            },
            "poll": {
                "preview_interval_s": 0.01,
                "render_interval_s": 0.01,
                "jitter_fraction": 0.2,
                "preview_deadline_s": 30.0,
                "render_deadline_s": 30.0,
            },
            "retry": {"max_attempts": 8, "base_delay_s": 0.05, "max_delay_s": 1.0},
            # The pipeline's own cost: report.html's poster frames (PyAV, a few ms a video,
            # done once at the end of a run) and the preview GIFs made during it (PyAV, ~9 ms
            # of CPU a video: docs/performance.md#cpu-per-row) are features of their own,
            # measured apart.
            "report": {"posters": False, "preview_gif": False},
            # The simulator's clips are ~10 KB, not the MBs a real video takes: 100k rows
            # would be refused by the free-space check before the run (run.disk).
            "run": {"check_disk_space": False},
        },
    )


def _no_latency_run(work: Path, plan: Plan, rows: int) -> tuple[Measured, Path, dict[str, Any]]:
    manifest, template = write_batch(work, rows)
    config = _fast_config(work / "config.toml")
    with SimProcess("--profile", "test", "--seed", str(plan.seed)) as sim:
        m, run_dir = _run(work, sim, manifest, template, config, plan)
        stats = sim.stats()
    return m, run_dir, stats


def overhead(work: Path, plan: Plan) -> Figures:
    """The orchestrator's own cost against a simulator with no latency and no limits."""
    rows = plan.overhead_rows
    m, run_dir, stats = _no_latency_run(work, plan, rows)
    rate = steady_rate(downloaded_times(run_dir / "ledger.jsonl")[1])
    cpu_ms = m.cpu_s * 1000 / rows
    figures = {
        "rows_per_s": Figure(round(rate, 2) if rate else None, "rows/s"),
        **_common(m, rows, stats),
        "done": Figure(_count(run_dir, "done"), "rows", f"of {rows}"),
    }
    figures["cpu_ms_per_row"] = Figure(
        round(cpu_ms, 3), "ms/row", "<= 2 (issue 31; 3 before)", cpu_ms <= 2.0
    )
    figures["cpu_s_total"] = Figure(round(m.cpu_s, 2), "s", "incl. start-up and pre-flight")
    # What report.html adds when its poster frames are on (the default): `orchestrator report`
    # over the same run directory, posters made from scratch.
    report = measure(
        orchestrator_argv("report", str(run_dir)),
        env=None,
        log=work / "report.log",
        timeout_s=plan.timeout_s,
    )
    figures["report_cpu_ms_per_row"] = Figure(
        round(report.cpu_s * 1000 / rows, 3),
        "ms/row",
        "results.csv + report.html + a poster per video, once per run",
    )
    return figures


def validate_xlsx(work: Path, plan: Plan) -> Figures:
    """Validate the million-row batch as an Excel workbook: time and peak RSS. Twice: laid out
    as Excel writes it (shared strings), and as openpyxl's write-only mode does (inline strings,
    no dimension: ``inline_*``)."""
    figures: Figures = {"validate_rows": Figure(plan.validate_rows, "rows")}
    for prefix, shared in (("", True), ("inline_", False)):
        manifest, template = write_xlsx_batch(work, plan.validate_rows, shared=shared)
        m = measure(
            orchestrator_argv("validate", str(manifest), "--template", str(template)),
            env=None,
            log=work / "stderr.log",
            timeout_s=plan.timeout_s,
        )
        if m.exit_code != 0:
            raise RuntimeError(f"validate failed ({m.exit_code}):\n{m.stderr_tail}")
        rss = m.maxrss_mb
        figures[f"{prefix}xlsx_mb"] = Figure(round(manifest.stat().st_size / 1e6, 1), "MB")
        figures[f"{prefix}validate_s"] = Figure(round(m.wall_s, 2), "s", "none (CSV: <= 30)")
        figures[f"{prefix}validate_peak_rss_mb"] = Figure(round(rss, 1), "MB", "<= 150", rss <= 150)
        shutil.rmtree(work)
    return figures


def scale(work: Path, plan: Plan) -> Figures:
    """Validate and replay a million rows; peak RSS of a small vs a 10× larger run."""
    figures: Figures = {}
    vdir = work / "validate"
    manifest, template = write_batch(vdir, plan.validate_rows)
    m = measure(
        orchestrator_argv("validate", str(manifest), "--template", str(template)),
        env=None,
        log=vdir / "stderr.log",
        timeout_s=plan.timeout_s,
    )
    if m.exit_code != 0:
        raise RuntimeError(f"validate failed ({m.exit_code}):\n{m.stderr_tail}")
    figures["validate_rows"] = Figure(plan.validate_rows, "rows")
    figures["validate_s"] = Figure(round(m.wall_s, 2), "s", "<= 30", m.wall_s <= 30)
    figures["validate_peak_rss_mb"] = Figure(
        round(m.maxrss_mb, 1), "MB", "<= 150", m.maxrss_mb <= 150
    )
    shutil.rmtree(vdir)

    rdir = work / "replay"
    ledger = synthetic_ledger(rdir, plan.replay_rows)
    m = measure(
        [*orchestrator_argv()[:1], "-m", "benchmarks.replay_probe", str(ledger)],
        env=None,
        log=rdir / "stderr.log",
        timeout_s=plan.timeout_s,
    )
    if m.exit_code != 0:
        raise RuntimeError(f"replay failed ({m.exit_code}):\n{m.stderr_tail}")
    figures["replay_rows"] = Figure(plan.replay_rows, "rows", "7 events per row")
    figures["replay_s"] = Figure(round(m.wall_s, 2), "s")
    figures["replay_peak_rss_mb"] = Figure(round(m.maxrss_mb, 1), "MB")
    shutil.rmtree(rdir)

    small, large = plan.scale_rows
    rss: list[float] = []
    for rows in (small, large):
        m, run_dir, _ = _no_latency_run(work / f"run-{rows}", plan, rows)
        figures[f"run_{rows}_s"] = Figure(round(m.wall_s, 2), "s")
        figures[f"run_{rows}_done"] = Figure(_count(run_dir, "done"), "rows", f"of {rows}")
        figures[f"run_{rows}_peak_rss_mb"] = Figure(round(m.maxrss_mb, 1), "MB")
        rss.append(m.maxrss_mb)
        shutil.rmtree(work / f"run-{rows}")
    growth = rss[1] / rss[0] - 1
    figures[f"run_{large}_peak_rss_mb"].bound = "<= 150"
    figures[f"run_{large}_peak_rss_mb"].met = rss[1] <= 150
    figures["rss_growth"] = Figure(
        round(growth, 3), f"{large} vs {small} rows", "<= 0.10", growth <= 0.10
    )
    return figures


def faults(work: Path, plan: Plan, clean_makespan_s: float | None) -> Figures:
    """The rate-bound batch against the ``flaky`` profile's faults, resumed until settled."""
    manifest, template, config, _ = _rate_bound_batch(work, plan, RATE_K_POLL, webhook=False)
    with SimProcess(*_sim_args(plan, "flaky", rate=plan.rate_rps, cap=1000)) as sim:
        m, run_dir = _run(work, sim, manifest, template, config, plan, may_stop=True)
        first_s, total_s, resumes, cpu_s = m.wall_s, m.wall_s, 0, m.cpu_s
        finished = m.exit_code in (0, 1)
        while finished and _count(run_dir, "failed") and resumes < plan.max_resumes:
            resumes += 1
            m, _ = _run(
                work, sim, manifest, template, config, plan, "--retry-failed", may_stop=True
            )
            total_s += m.wall_s
            cpu_s += m.cpu_s
            finished = m.exit_code in (0, 1)
        stats = sim.stats()
    if not finished:  # stopped or killed: rebuild results.csv from the ledger, as a user would
        measure(
            orchestrator_argv("report", str(run_dir)),
            env=None,
            log=work / "report.log",
            timeout_s=plan.timeout_s,
        )
    results = read_results(run_dir)
    rerendered = rerenders_recorded(run_dir / "ledger.jsonl")
    unexplained = stats["duplicate_renders"] - rerendered
    twice = sum(1 for n in stats["renders_per_preview"].values() if n > 1)
    ids = [r["id"] for r in results]
    lost = plan.rows - len(set(ids))
    dupes = len(ids) - len(set(ids))
    figures = {
        "finished": Figure(
            int(finished), "bool", f"0: a pass ran past {plan.fault_pass_timeout_s:g} s, stopped"
        ),
        "first_pass_makespan_s": Figure(round(first_s, 2), "s"),
        "makespan_vs_clean": Figure(
            round(first_s / clean_makespan_s, 3) if clean_makespan_s else None,
            "× clean",
            "first pass / clean rate-bound run",
        ),
        "resumes": Figure(resumes, "runs", "--retry-failed until no row failed"),
        "total_makespan_s": Figure(round(total_s, 2), "s", "all passes"),
        "rows_lost": Figure(lost, "rows", "must be 0", lost == 0),
        "rows_twice_in_results": Figure(dupes, "rows", "must be 0", dupes == 0),
        "duplicate_renders": Figure(
            unexplained,
            "count",
            "must be 0 (same row rendered again without a ledger reason)",
            unexplained == 0,
        ),
        "renders_again_after_failed_job": Figure(
            rerendered, "count", "legitimate: --retry-failed after the render job failed"
        ),
        "two_renders_of_one_preview": Figure(twice, "count", "must be 0", twice == 0),
        "done": Figure(sum(r["status"] == "done" for r in results), "rows", f"of {plan.rows}"),
        "ambiguous": Figure(
            sum(r["status"] == "ambiguous" for r in results),
            "rows",
            "left for --rerender-ambiguous",
        ),
        "failed": Figure(sum(r["status"] == "failed" for r in results), "rows"),
        "pending": Figure(sum(r["status"] == "pending" for r in results), "rows"),
        "faults_injected": Figure(
            sum(stats["faults"].values()), "count", json.dumps(stats["faults"], sort_keys=True)
        ),
        "http_429": Figure(stats["rate_limited"], "count", "limit + injected"),
        "cpu_ms_per_row": Figure(round(cpu_s * 1000 / plan.rows, 3), "ms/row"),
    }
    return figures


def synthetic_ledger(folder: Path, rows: int) -> Path:
    """A ledger of ``rows`` done rows with the events a real run writes for each."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ledger.jsonl"
    ts = 1_700_000_000.0
    sha = "0" * 64
    with path.open("w") as f:
        f.write(
            json.dumps(
                {
                    "e": "run",
                    "ts": ts,
                    "session": 1,
                    "manifest": "/m.csv",
                    "manifest_sha256": sha,
                    "template": "/t.pictai",
                    "config": {},
                },
                separators=(",", ":"),
            )
            + "\n"
        )
        f.write(f'{{"e":"template","ts":{ts},"sha256":"{sha}","template_id":"tpl-1"}}\n')
        for i in range(rows):
            r = f"row-{i:07d}"
            p = f"{i:08x}-1111-4222-8333-{i:012x}"
            j = f"{i:08x}-5555-4666-8777-{i:012x}"
            t = ts + i * 0.01
            f.write(
                f'{{"e":"row","ts":{t:.3f},"row":"{r}","line":{i + 2},"output":"{r}.mp4"}}\n'
                f'{{"e":"preview_job","ts":{t:.3f},"row":"{r}","job":"{p}"}}\n'
                f'{{"e":"preview_ready","ts":{t:.3f},"row":"{r}","job":"{p}"}}\n'
                f'{{"e":"render_intent","ts":{t:.3f},"row":"{r}","preview_job":"{p}"}}\n'
                f'{{"e":"render_job","ts":{t:.3f},"row":"{r}","job":"{j}"}}\n'
                f'{{"e":"render_ready","ts":{t:.3f},"row":"{r}","job":"{j}","video_url":'
                f'"http://127.0.0.1:8765/__cdn__/video/{j}.mp4?expires=1700003600&sig='
                f'{sha[:32]}","duration_s":31.42}}\n'
                f'{{"e":"downloaded","ts":{t:.3f},"row":"{r}","file":"videos/{r}.mp4",'
                f'"bytes":104857,"sha256":"{sha}"}}\n'
            )
    return path


def _count(run_dir: Path, status: str) -> int:
    return sum(r["status"] == status for r in read_results(run_dir))

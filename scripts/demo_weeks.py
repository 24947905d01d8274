"""Demo step 8: weeks of the churn business after the history, and the monitoring loop closing.

    python scripts/demo_weeks.py --first-day 2025-03-23 --weeks 5 --shift-day 2025-03-30 \
        --incoming $ML_PLATFORM_HOME/incoming --serve-url http://127.0.0.1:23000

Each simulated week (Sunday .. Saturday):

1. the week's transaction files land (copied from the generated `--incoming` folder, in which
   the generator shifted amounts, channels and rates from `--shift-day` on);
2. the data plane ingests, gates and snapshots them and publishes the snapshot to the online
   store (`ml-platform run --publish`, one Spark job; the CLI's main is called in this process,
   so the imports and the Spark Connect session are paid once, not every week);
3. live traffic: `--requests` POSTs to the running BentoML service (customers of the snapshot);
4. the `monitoring` DAG runs for the week in Airflow's scheduler: a run created through the REST
   API for the week's data interval, with the week's first day as its logical date (the run the
   weekly schedule makes for that week; the demo sets ML_PLATFORM_MONITORING_END_DATE to the last
   week, so the schedule itself starts nothing for the real current week): prediction log, late
   labels, drift, realised performance, the policy's decision;
5. a retrain decision is picked up by the deferrable sensor of `retrain_on_drift` (running in
   the scheduler), which emits `training.retrain_requested`; the training DAG runs, its
   challenger goes through `serving_deploy` (the gate decides), and the script waits for that.

Then it prints the week table (drift, realised AUC per version, decisions) and saves a PNG of
realised AUC and drift over the weeks (`<home>/reports/monitoring_weeks.png`). Progress lines go
to stdout; the data plane's output of each week goes to `<home>/logs/demo_weeks/`, the monitoring
runs' logs are in the Airflow UI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from airflow_api import ApiError, run_url, runs, trigger, wait_new_run, wait_run  # noqa: E402

if TYPE_CHECKING:
    from ml_platform.config import Settings


@contextmanager
def output_to(log: Path) -> Iterator[None]:
    """Everything this process and its children write to stdout/stderr goes to `log` meanwhile
    (file descriptors 1 and 2, so also loggers that hold on to the original streams)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("w") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def run_data_plane(args: list[str], log: Path) -> None:
    """`ml-platform run ARGS` in this process: the CLI's own main, its output to `log`. One process
    for every week saves the imports (Great Expectations alone takes 5 s) and the Spark Connect
    session's start that a new CLI process pays each week."""
    from ml_platform.cli import main as cli

    with output_to(log):
        rc = cli(["run", *args])
    if rc != 0:
        sys.exit(f"`ml-platform run {' '.join(args)}` failed (exit {rc}); its output: {log}")


def send_traffic(url: str, customers: list[str], requests: int, batch: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    versions: dict[str, int] = {}
    for _ in range(requests):
        body = json.dumps({"customer_ids": rng.sample(customers, min(batch, len(customers)))}).encode()
        req = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            for p in json.load(r)["predictions"]:
                if p["found"]:
                    versions[p["model_version"]] = versions.get(p["model_version"], 0) + 1
    return versions


def wait_champion(url: str, version: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as r:
                if str(json.load(r).get("champion")) == version:
                    return
        except OSError:
            pass
        time.sleep(2)
    sys.exit(f"the service did not switch to v{version} within {timeout:.0f} s")


def run_week(k: int, a: argparse.Namespace, s: Settings, logs: Path) -> dict[str, Any]:
    """Week `k` of the loop (steps 1-5 of the module doc); its row of the week table."""
    from ml_platform.data.landing import land
    from ml_platform.lake.paths import landing_dir
    from ml_platform.serving.bento import sample_customers
    from week_report import week_row

    t0 = time.monotonic()
    first = a.first_day + timedelta(days=7 * k)
    days = [first + timedelta(days=i) for i in range(7)]
    end = days[-1]
    tag = "shifted" if end >= a.shift_day else "normal"
    print(f"  week {k + 1}/{a.weeks} {first} .. {end} ({tag}): landing", end="", flush=True)
    if land(a.incoming, landing_dir(s), "transactions", days) == 0:
        sys.exit(f"\nno generated files for {first} .. {end} under {a.incoming}")
    print(", features", end="", flush=True)
    run_data_plane(["--start", first.isoformat(), "--end", end.isoformat(), "--publish"], logs / f"{end}-run.log")
    print(", traffic", end="", flush=True)
    served = send_traffic(a.serve_url, sample_customers(10**9), a.requests, a.batch, seed=k)
    print(", monitoring", end="", flush=True)
    known = {r["dag_run_id"] for r in runs("training")}
    monitoring = wait_run("monitoring", trigger("monitoring", interval=(first, end + timedelta(days=1))))
    if monitoring["state"] != "success":
        sys.exit(
            f"\nthe monitoring run for {first} .. {end} ended {monitoring['state']}: "
            f"{run_url('monitoring', monitoring['dag_run_id'])}"
        )
    row = week_row(end) | {"served": served}
    if row["retrain"]:
        print(", retrain: waiting for retrain_on_drift -> training", end="", flush=True)
        deploys = {r["dag_run_id"] for r in runs("serving_deploy")}
        train = wait_new_run("training", known, 1800)
        row["training"] = train["state"]
        print(f" ({train['state']}) -> serving_deploy", end="", flush=True)
        deploy = wait_new_run("serving_deploy", deploys, 900)
        from ml_platform.registry.aliases import history as alias_history

        last = alias_history(s)[-1]
        row["gate"] = f"{last['action']} v{last['challenger_version']}: {last['reason']}"
        if last["action"] == "promote" and deploy["state"] == "success":
            wait_champion(a.serve_url, str(last["champion_version"]))
    print(f" ({time.monotonic() - t0:.0f} s)")
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--first-day", type=date.fromisoformat, required=True, help="a Sunday: first day of week 1")
    p.add_argument("--weeks", type=int, default=5, help="weeks to simulate (default 5)")
    p.add_argument("--shift-day", type=date.fromisoformat, required=True, help="the generator's --drift-at day")
    p.add_argument("--incoming", type=Path, required=True, help="generated files of every day (landing layout)")
    p.add_argument("--serve-url", default="http://127.0.0.1:23000")
    p.add_argument("--requests", type=int, default=60, help="POSTs per week (default 60)")
    p.add_argument("--batch", type=int, default=10, help="customers per POST (default 10)")
    a = p.parse_args(argv)
    if a.first_day.weekday() != 6:
        p.error(f"--first-day must be a Sunday, got {a.first_day} ({a.first_day:%A})")
    if a.weeks < 1 or a.requests < 1 or a.batch < 1:
        p.error("--weeks, --requests and --batch must be positive")
    if not (a.incoming / "transactions").is_dir():
        p.error(f"no generated files under {a.incoming / 'transactions'}")

    from ml_platform.config import get_settings
    from week_report import estimate_error, format_weeks, own_week, plot_weeks

    s = get_settings()
    logs = s.home / "logs" / "demo_weeks"
    rows = [run_week(k, a, s, logs) for k in range(a.weeks)]
    for row in rows:  # the labels of the early weeks' predictions came in during the later ones
        row.update(own_week(date.fromisoformat(row["week_end"]), row["champion"], s))
    print("\n" + format_weeks(rows, a.shift_day))
    err = estimate_error(rows)
    paired = sum(1 for r in rows if r.get("estimate") and r.get("own_auc"))
    print(
        f"\n  label-free AUC estimate vs the realised AUC of the same week's predictions: mean |error| {err:.3f} "
        f"over {paired} week(s)"
        if err is not None
        else "\n  label-free AUC estimate vs realised: no week's predictions have enough labels yet"
    )
    png = s.reports_dir / "monitoring_weeks.png"
    plot_weeks(rows, a.shift_day, png)
    (s.reports_dir / "monitoring_weeks.json").write_text(json.dumps(rows, indent=1, default=str))
    print(
        f"\n  plot: {png}\n  drift reports: {s.home / 'reports' / 'drift'}   table: {s.reports_dir / 'monitoring_weeks.json'}"
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ApiError as e:
        sys.exit(f"demo_weeks: {e}")

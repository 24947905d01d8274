"""The demo's client of Airflow's REST API (v2): one HTTP call where an `airflow` CLI call costs
about 3 s of start-up (the demo makes dozens of them).

    python scripts/airflow_api.py parsed training serving_deploy   # wait until the DAGs are parsed
    python scripts/airflow_api.py unpause training serving_deploy
    python scripts/airflow_api.py trigger training --conf '{"n_trials": 4}'   # prints the run id
    python scripts/airflow_api.py wait training --min-runs 2
        # wait until the DAG has at least 2 runs and none is queued or running; exit 1 unless all succeeded

It talks to the api-server of scripts/airflow_up.sh (http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT)
through `apache-airflow-client` (the same version as Airflow), as the simple auth manager's user
whose password that script wrote to $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated;
the token comes from the auth manager's `/auth/token` (not part of the public API the client covers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from airflow_client.client import ApiClient, Configuration, DAGApi, DagRunApi
from airflow_client.client.exceptions import ApiException
from airflow_client.client.models import DAGPatchBody, TriggerDAGRunPostBody

T = TypeVar("T")
_client: ApiClient | None = None


class ApiError(RuntimeError):
    pass


def base_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ML_PLATFORM_AIRFLOW_PORT', '28080')}"


def _token() -> str:
    passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    user, password = next(iter(json.loads(passwords.read_text()).items()))
    req = urllib.request.Request(
        base_url() + "/auth/token",
        method="POST",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return str(json.load(r)["access_token"])
    except urllib.error.HTTPError as e:
        raise ApiError(f"POST /auth/token: HTTP {e.code}") from None
    except urllib.error.URLError as e:
        raise ApiError(f"Airflow's api-server at {base_url()} does not answer ({e.reason})") from None


def client() -> ApiClient:
    """The API client, signed in once per process."""
    global _client
    if _client is None:
        _client = ApiClient(Configuration(host=base_url(), access_token=_token()))
    return _client


def call(what: str, fn: Callable[[], T]) -> T:
    """`fn()` (a client call) with its HTTP errors and refused connections as one-line ApiErrors."""
    try:
        return fn()
    except ApiException as e:
        raise ApiError(f"{what}: HTTP {e.status} {(e.body or '')[:300]}") from None
    except OSError as e:  # urllib3's connection errors are OSErrors
        raise ApiError(f"{what}: Airflow's api-server at {base_url()} does not answer ({e})") from None


def runs(dag_id: str) -> list[dict[str, Any]]:
    """The DAG's runs (dag_run_id, state, ...; JSON values), newest first."""
    page = call(
        f"runs of {dag_id}", lambda: DagRunApi(client()).get_dag_runs(dag_id, order_by=["-run_after"], limit=100)
    )
    return [r.to_dict() | {"state": r.state.value} for r in page.dag_runs]


def unpause(dag_id: str) -> None:
    call(f"unpause {dag_id}", lambda: DAGApi(client()).patch_dag(dag_id, DAGPatchBody(is_paused=False)))


def trigger(dag_id: str, conf: dict[str, Any] | None = None, interval: tuple[date, date] | None = None) -> str:
    """A manual run; returns its run id. Without `interval`: now, with no logical date (as
    `airflow dags trigger`). With `interval` (start, end): the run the DAG's schedule makes for that
    data interval, with the start as its logical date (what a backfill of that date creates)."""
    if interval is None:
        body = TriggerDAGRunPostBody(logical_date=None, conf=conf or {})
    else:
        start, end = (datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc) for d in interval)
        body = TriggerDAGRunPostBody(
            logical_date=start, data_interval_start=start, data_interval_end=end, conf=conf or {}
        )
    return call(f"trigger {dag_id}", lambda: DagRunApi(client()).trigger_dag_run(dag_id, body)).dag_run_id


def wait_run(dag_id: str, run_id: str, timeout: float = 1800, poll: float = 1.0) -> dict[str, Any]:
    """Wait until the run `run_id` of `dag_id` ends; return it (JSON values, "state" a string)."""
    deadline = time.monotonic() + timeout
    while True:
        r = call(f"run {run_id} of {dag_id}", lambda: DagRunApi(client()).get_dag_run(dag_id, run_id))
        if r.state.value in ("success", "failed"):
            return r.to_dict() | {"state": r.state.value}
        if time.monotonic() > deadline:
            raise ApiError(f"the {dag_id} run {run_id} did not end within {timeout:.0f} s (it is {r.state.value})")
        time.sleep(poll)


def run_url(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI."""
    return f"{base_url()}/dags/{dag_id}/runs/{urllib.parse.quote(run_id)}"


def wait_parsed(dag_ids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    missing = list(dag_ids)
    while missing:
        for d in list(missing):
            try:
                call(f"DAG {d}", lambda: DAGApi(client()).get_dag(d))
                missing.remove(d)
            except ApiError as e:
                if "HTTP 404" not in str(e):
                    raise
        if missing:
            if time.monotonic() > deadline:
                raise ApiError(
                    f"DAGs not parsed within {timeout:.0f} s: {', '.join(missing)} "
                    f"(dag-processor log: $ML_PLATFORM_HOME/logs/dag-processor.log)"
                )
            time.sleep(1)


def wait_idle(dag_id: str, min_runs: int = 1, timeout: float = 1800, poll: float = 1.0) -> bool:
    """Wait until `dag_id` has at least `min_runs` runs and none is queued or running, showing
    their states; True when every run succeeded."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        states = {r["dag_run_id"]: r["state"] for r in runs(dag_id)}
        line = ", ".join(f"{k.split('__')[0]} {k.split('__')[1][:10]}={v}" for k, v in sorted(states.items()))
        if line != shown:  # a line per change of state, not per poll
            print(f"{chr(10) if shown else ''}  {dag_id} runs: {line}", end="", flush=True)
            shown = line
        if len(states) >= min_runs and not any(v in ("queued", "running") for v in states.values()):
            print()
            return all(v == "success" for v in states.values())
        if time.monotonic() > deadline:
            raise ApiError(f"timed out after {timeout:.0f} s waiting for {dag_id} runs")
        time.sleep(poll)


def wait_new_run(dag_id: str, known: set[str], timeout: float, poll: float = 1.0) -> dict[str, Any]:
    """Wait for a run of `dag_id` not in `known` to finish; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [r for r in runs(dag_id) if r["dag_run_id"] not in known and r["state"] in ("success", "failed")]
        if done:
            return done[0]
        time.sleep(poll)
    raise ApiError(f"no new {dag_id} run finished within {timeout:.0f} s (Airflow logs: $ML_PLATFORM_HOME/logs)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("parsed", help="wait until the DAGs are parsed").add_argument("dag_ids", nargs="+")
    sub.add_parser("unpause", help="unpause DAGs").add_argument("dag_ids", nargs="+")
    t = sub.add_parser("trigger", help="trigger a run now; prints its run id")
    t.add_argument("dag_id")
    t.add_argument("--conf", type=json.loads, default={}, help="the run's params (a JSON object)")
    w = sub.add_parser("wait", help="wait until no run is queued or running; exit 1 unless all succeeded")
    w.add_argument("dag_id")
    w.add_argument("--min-runs", type=int, default=1, help="runs that must exist first (default 1)")
    a = p.parse_args(argv)
    try:
        if a.cmd == "parsed":
            wait_parsed(a.dag_ids)
        elif a.cmd == "unpause":
            for d in a.dag_ids:
                unpause(d)
        elif a.cmd == "trigger":
            print(trigger(a.dag_id, a.conf))
        else:
            return 0 if wait_idle(a.dag_id, a.min_runs) else 1
    except ApiError as e:
        print(f"airflow_api: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

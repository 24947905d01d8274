"""The demo's client of Airflow's REST API (v2): one HTTP call where an `airflow` CLI call costs
about 3 s of start-up (the demo makes dozens of them).

    python scripts/airflow_api.py parsed training serving_deploy   # wait until the DAGs are parsed
    python scripts/airflow_api.py unpause training serving_deploy
    python scripts/airflow_api.py trigger training --conf '{"n_trials": 4}'   # prints the run id
    python scripts/airflow_api.py wait training --min-runs 2
        # wait until the DAG has at least 2 runs and none is queued or running; exit 1 unless all succeeded

It talks to the api-server of scripts/airflow_up.sh (http://127.0.0.1:$ML_PLATFORM_AIRFLOW_PORT) as
the simple auth manager's user whose password that script wrote to
$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated. Standard library only.
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
from pathlib import Path
from typing import Any

_token: str | None = None


class ApiError(RuntimeError):
    pass


def base_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('ML_PLATFORM_AIRFLOW_PORT', '28080')}"


def _request(method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url() + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "Accept": "application/json"}
                                 | ({"Authorization": f"Bearer {token}"} if token else {}))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:300]
        raise ApiError(f"{method} {path}: HTTP {e.code} {detail}") from None
    except urllib.error.URLError as e:
        raise ApiError(f"{method} {path}: Airflow's api-server at {base_url()} does not answer ({e.reason})") from None


def call(method: str, path: str, body: Any = None) -> Any:
    """An authenticated call; the token is fetched once per process."""
    global _token
    if _token is None:
        passwords = Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        user, password = next(iter(json.loads(passwords.read_text()).items()))
        _token = _request("POST", "/auth/token", {"username": user, "password": password})["access_token"]
    return _request(method, path, body, _token)


def runs(dag_id: str) -> list[dict[str, Any]]:
    """The DAG's runs (run_id, state, ...), newest first."""
    q = urllib.parse.urlencode({"order_by": "-run_after", "limit": 100})
    return call("GET", f"/api/v2/dags/{dag_id}/dagRuns?{q}")["dag_runs"]


def unpause(dag_id: str) -> None:
    call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})


def trigger(dag_id: str, conf: dict[str, Any] | None = None) -> str:
    """A manual run now (no logical date, as `airflow dags trigger`); returns its run id."""
    return call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})["dag_run_id"]


def wait_parsed(dag_ids: list[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    missing = list(dag_ids)
    while missing:
        for d in list(missing):
            try:
                call("GET", f"/api/v2/dags/{d}")
                missing.remove(d)
            except ApiError as e:
                if "HTTP 404" not in str(e):
                    raise
        if missing:
            if time.monotonic() > deadline:
                raise ApiError(f"DAGs not parsed within {timeout:.0f} s: {', '.join(missing)} "
                               f"(dag-processor log: $ML_PLATFORM_HOME/logs/dag-processor.log)")
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

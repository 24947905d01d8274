"""The Airflow UI as a user drives it, in a real browser (Debian's chromium through Playwright).

Runs on what the cluster tier's quick demo produced (the folder the tiers share; the demo runs here
first when this tier runs alone): Airflow, the MLflow UI and `ml-platform serve` are started again
on that platform home with the demo's settings. Logs in, opens every DAG, triggers each from its
form with the defaults, refuses bad values, backfills two dates of `features_build` from the form,
follows every result link of the demo's runs and opens the service's API docs. A screenshot of
every page goes to `$ML_PLATFORM_UI_SCREENSHOTS` (scripts/test.sh: `test-results/ui/`), with
`outcomes.json`: each DAG's outcome of its UI trigger.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import demo_home, restart_demo_stack, run_quick_demo

pytestmark = pytest.mark.ui
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
DAGS = [
    "features_build",
    "training",
    "serving_deploy",
    "batch_scoring",
    "monitoring",
    "retrain_on_drift",
    "lake_maintenance",
    "platform_check",
]
#: DAGs whose UI-triggered run must succeed; the others must reach their first task and are stopped
#: there: what this tier checks is that the form's values start a run that works. Their whole runs are
#: the dags tier's (`dag.test()`) and the cluster tier's (the loop on the production topology).
RUN_TO_THE_END = {"platform_check"}
#: `@continuous` DAGs: unpausing starts their own run, whose sensor waits (deferred, no worker slot)
ALWAYS_LISTENING = {"retrain_on_drift"}
#: DAGs whose first task is the whole job (OPTIMIZE and VACUUM of every table: minutes on Azurite):
#: this tier checks that it starts from the form's defaults; the dags tier runs it to the end
STARTED_IS_ENOUGH = {"lake_maintenance"}
#: DAGs whose schedule the demo ends (ML_PLATFORM_DAG_END_DATE, ML_PLATFORM_MONITORING_END_DATE) ->
#: a day inside it that none of the demo's runs has as its logical date (theirs are Sundays)
BOUNDED = {
    "features_build": lambda env: date.fromisoformat(env["ML_PLATFORM_DAG_START_DATE"]) + timedelta(days=1),
    "monitoring": lambda env: date.fromisoformat(env["ML_PLATFORM_MONITORING_END_DATE"]) - timedelta(days=1),
}


@pytest.fixture(scope="module")
def shots() -> Path:
    d = Path(os.environ.get("ML_PLATFORM_UI_SCREENSHOTS") or ROOT / "test-results" / "ui")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> dict[str, Any]:
    """Airflow (api-server, scheduler, dag-processor, triggerer), the MLflow UI and the service,
    on the quick demo's platform home with the demo's settings and fresh ports."""
    from ml_platform.serving.bento import free_port

    home = demo_home()
    if home is None or not (home / "DONE").exists():  # this tier alone: the demo first
        home = home or tmp_path_factory.mktemp("demo") / "platform"
        home.mkdir(parents=True, exist_ok=True)
        rc, out = run_quick_demo(home, home.parent / "demo.log", free_port(), weeks=2)
        assert rc == 0, out[-4000:]
    # what this tier tests is the UI: the demo's metadata, lake and stores, on the LocalExecutor and
    # local Spark (the cluster tier runs the topology; here each UI-triggered job would wait for it)
    env = restart_demo_stack(home, cluster=False)
    port = int(env["ML_PLATFORM_AIRFLOW_PORT"])
    serve = subprocess.Popen(
        [str(Path(sys.executable).parent / "ml-platform"), "serve"],
        env=env,
        stdout=(home / "logs" / "serve-ui.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (home / "run" / "serve-ui.pid").write_text(str(serve.pid))
    base = f"http://127.0.0.1:{port}"
    password = json.loads((home / "airflow" / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    token = _request("POST", f"{base}/auth/token", {"username": "admin", "password": password})["access_token"]
    stack = {
        "env": env,
        "home": home,
        "base": base,
        "password": password,
        "token": token,
        "service": f"http://127.0.0.1:{env['ML_PLATFORM_SERVING_PORT']}",
    }
    deadline = time.monotonic() + 120
    while len(_api(stack, "GET", "/api/v2/dags?limit=100")["dags"]) < len(DAGS):
        assert time.monotonic() < deadline, "the dag-processor did not register every DAG"
        time.sleep(2)
    yield stack
    subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=env, capture_output=True, timeout=120)


def _request(method: str, url: str, body: dict | None = None, token: str | None = None) -> Any:
    req = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def _api(stack: dict, method: str, path: str, body: dict | None = None) -> Any:
    return _request(method, stack["base"] + path, body, stack["token"])


def _runs(stack: dict, dag_id: str) -> dict[str, dict]:
    return {r["dag_run_id"]: r for r in _api(stack, "GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]}


def _tis(stack: dict, dag_id: str, run_id: str) -> dict[str, dict]:
    from urllib.parse import quote

    out = _api(stack, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances?limit=100")
    return {t["task_id"]: t for t in out["task_instances"] if t["map_index"] in (-1, 0)}


def _wait(what: str, check, timeout: float = 600, every: float = 3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, stack, shots):
    # a user of a tracking server with basic auth (the cluster and Azurite demos) has its account
    # in the browser; the MLflow UI over the embedded store asks for none
    env = stack["env"]
    mlflow_login = (
        {
            "username": env["MLFLOW_TRACKING_USERNAME"],
            "password": env["MLFLOW_TRACKING_PASSWORD"],
            "origin": f"http://127.0.0.1:{env['ML_PLATFORM_MLFLOW_PORT']}",
        }
        if env.get("MLFLOW_TRACKING_PASSWORD")
        else None
    )
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, http_credentials=mlflow_login)
    pg = context.new_page()
    pg.goto(stack["base"] + "/")
    pg.get_by_label("Username").fill("admin")
    pg.get_by_label("Password").fill(stack["password"])
    pg.screenshot(path=shots / "00-login.png")
    pg.get_by_role("button", name="Sign in").click()
    pg.wait_for_url(lambda u: "/auth/login" not in u)
    pg.wait_for_load_state("networkidle")
    pg.screenshot(path=shots / "01-home.png")
    yield pg
    context.close()


def _leave(page) -> None:
    """Close the UI's page while a test waits on the API: an open DAG page refetches every few
    seconds, costing the browser and the api-server CPU the runs being waited for need."""
    page.goto("about:blank")


def _open_trigger_form(page, stack: dict, dag_id: str):
    page.goto(f"{stack['base']}/dags/{dag_id}")
    page.wait_for_load_state("networkidle")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    page.wait_for_timeout(500)  # the form validates its params as it renders
    return dialog


def _pick_date(page, dialog, field, day: str) -> None:
    """Type a date (YYYY-MM-DD, 00:00 UTC) into one of the form's date-and-time popovers."""
    field.click()
    page.locator("input[placeholder='YYYY/MM/DD']:visible").last.fill(day.replace("-", "/"))
    time_field = page.locator("input[placeholder='HH:mm']:visible").last  # the popover just opened
    time_field.fill("00:00")
    time_field.press("Enter")
    dialog.get_by_role("heading").first.click()  # closes the popover


def _submit(dialog):
    return dialog.get_by_role("button", name=re.compile(r"^(Trigger|Run Backfill)$"))


# the first test pays for the module's stack: alone (`TIERS=ui`), the quick demo on the production
# topology first (about 15 minutes on 2 cores), beyond the tier's per-test default of 900 s
@pytest.mark.timeout(2700)
def test_results_are_served_behind_the_login_and_only_from_the_reports_folder(stack, page):
    reports = stack["home"] / "reports"
    report = next(reports.glob("training/*/evaluation.html"))
    url = f"{stack['base']}/ml-platform/files/{report.relative_to(reports).as_posix()}"
    anonymous = page.context.browser.new_context()
    try:
        assert anonymous.request.get(url).status == 401  # no session: no file
    finally:
        anonymous.close()
    ok = page.request.get(url)
    assert ok.status == 200 and b"<html" in ok.body()[:2000].lower()
    for probe in ("../airflow/airflow.db", "..%2Fairflow%2Fairflow.db", "%2Fetc%2Fpasswd", "training", "nope.html"):
        assert page.request.get(f"{stack['base']}/ml-platform/files/{probe}").status == 404, probe


def _new_manual_run(stack: dict, dag_id: str, before: set[str]) -> str | None:
    """The run a form submission created (not the scheduled one that unpausing may start beside it)."""
    return next((k for k, r in _runs(stack, dag_id).items() if k not in before and r["run_type"] == "manual"), None)


def _settle(stack: dict, dag_id: str) -> None:
    """Pause the DAG and stop its active runs: the demo's always-listening sensor, the scheduled run
    that unpausing from the form starts, the rest of a run whose first task was all this tier checks."""
    _api(stack, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": True})
    _stop_runs(stack, dag_id)


def _stop_runs(stack: dict, dag_id: str, keep: str | None = None) -> None:
    """Fail the DAG's queued and running runs but `keep` (their running tasks are terminated)."""
    from urllib.parse import quote

    for run in _runs(stack, dag_id).values():
        if run["state"] in ("queued", "running") and run["dag_run_id"] != keep:
            _api(stack, "PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'])}", {"state": "failed"})


def _first_task(stack: dict, dag_id: str) -> str:
    tasks = _api(stack, "GET", f"/api/v2/dags/{dag_id}/tasks")["tasks"]
    downstream = {d for t in tasks for d in t["downstream_task_ids"]}
    return next(t["task_id"] for t in tasks if t["task_id"] not in downstream)


def test_the_form_refuses_bad_values_or_the_first_task_names_the_param(stack, page, shots):
    dialog = _open_trigger_form(page, stack, "training")
    families = dialog.locator("[name='element_families']")
    families.fill("xgboost,catboost")
    families.blur()
    page.wait_for_timeout(500)
    before = set(_runs(stack, "training"))
    _submit(dialog).click()
    page.wait_for_timeout(2000)
    page.screenshot(path=shots / "30-training-bad-family.png", full_page=True)
    # the form stays open with the reason; no run exists
    assert "Invalid input for param families" in dialog.inner_text()
    assert _new_manual_run(stack, "training", before) is None, "a run was created with an unknown model family"
    dialog = _open_trigger_form(page, stack, "training")  # a new form: the error toast covers this one
    cutoffs = dialog.locator("[name='element_cutoffs']")
    cutoffs.fill("2025-02-30")  # the shape of a date, not a date: the form cannot know
    cutoffs.blur()
    page.wait_for_timeout(500)
    before = set(_runs(stack, "training"))
    _submit(dialog).click()
    run_id = _wait("the run", lambda: _new_manual_run(stack, "training", before), 60)

    def plan_failed():
        _stop_runs(stack, "training", keep=run_id)  # the scheduled run unpausing started is not checked here
        t = _tis(stack, "training", run_id).get("plan")
        return t if t and t["state"] == "failed" else None

    ti = _wait("plan", plan_failed, 300)
    from urllib.parse import quote

    log = _api(
        stack,
        "GET",
        f"/api/v2/dags/training/dagRuns/{quote(run_id)}/taskInstances/plan/logs/{ti['try_number']}?full_content=true",
    )
    text = json.dumps(log)
    assert "param cutoffs: not a date (YYYY-MM-DD): '2025-02-30'" in text
    assert ti["try_number"] == 1  # failed at once: a retry would not help
    assert "Traceback" not in text
    _wait("the run to fail", lambda: _runs(stack, "training")[run_id]["state"] == "failed", 60, 1)
    _settle(stack, "training")


def test_a_backfill_of_two_dates_from_the_form_leaves_the_tables_as_the_schedule_did(stack, page, shots):
    demo = _tables(stack["env"])  # the demo's history job made these dates' snapshots
    # the schedule first: unpaused, features_build catches up on its two weekly intervals
    _api(stack, "PATCH", "/api/v2/dags/features_build", {"is_paused": False})
    _leave(page)
    scheduled = _wait(
        "the two scheduled runs",
        lambda: (
            (r := list(_runs(stack, "features_build").values()))
            and len(r) == 2
            and all(x["state"] in ("success", "failed") for x in r)
            and r
        ),
        900,
    )
    assert {r["state"] for r in scheduled} == {"success"} and {r["run_type"] for r in scheduled} == {"scheduled"}
    after_schedule = _tables(stack["env"])
    assert after_schedule == demo  # the schedule reprocessed the demo's dates: nothing changed

    start, end = stack["env"]["ML_PLATFORM_DAG_START_DATE"], stack["env"]["ML_PLATFORM_DAG_END_DATE"]
    backfill = None
    for attempt in range(3):  # on SQLite, Airflow may refuse the creation while the scheduler writes
        dialog = _open_trigger_form(page, stack, "features_build")
        dialog.get_by_text("Backfill", exact=True).click()
        for day in (start, end):  # From, then To
            _pick_date(page, dialog, dialog.get_by_text("Select date and time").first, day)
        dialog.get_by_text("All Runs").click()  # the schedule ran these dates: reprocess them
        dialog.get_by_text("2 runs will be triggered.").wait_for()
        page.screenshot(path=shots / "20-features_build-backfill-form.png", full_page=True)
        _submit(dialog).click()
        time.sleep(10)  # a refused creation is rolled back within seconds
        backfill = next((b for b in _api(stack, "GET", "/api/v2/backfills?dag_id=features_build")["backfills"]), None)
        if backfill is not None:
            break
        page.screenshot(path=shots / f"20-features_build-backfill-refused-{attempt}.png", full_page=True)
    assert backfill is not None, "the backfill dialog created no backfill in 3 attempts"
    (shots / "backfill.json").write_text(json.dumps({"attempts": attempt + 1, **backfill}, indent=2))
    _leave(page)
    _wait(
        "the backfill to complete",
        lambda: _api(stack, "GET", f"/api/v2/backfills/{backfill['id']}")["completed_at"],
        900,
    )
    runs = [r for r in _runs(stack, "features_build").values() if r["start_date"] > backfill["created_at"]]
    page.goto(f"{stack['base']}/dags/features_build")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=shots / "21-features_build-after-backfill.png", full_page=True)
    assert sorted(r["logical_date"][:10] for r in runs) == [start, end], runs  # the two dates, rerun
    assert {r["state"] for r in runs} == {"success"}, runs
    spans = sorted((r["start_date"], r["end_date"]) for r in runs)
    assert spans[0][1] <= spans[1][0], f"the two dates ran at the same time: {spans}"  # one at a time
    assert _tables(stack["env"]) == after_schedule  # the backfill left the tables as the schedule did


def test_every_dag_triggers_from_its_form_with_the_defaults(stack, page, shots):
    outcomes: dict[str, Any] = {}
    for i, dag_id in enumerate(DAGS):  # one at a time: each run owns the lake while it writes
        _settle(stack, dag_id)
        before = set(_runs(stack, dag_id))
        dialog = _open_trigger_form(page, stack, dag_id)
        if dag_id in BOUNDED:  # the demo bounds their schedules: a run for today would be past the
            # DAG's end and have no task; take a day inside it (not one that already has a run: a
            # logical date is unique per DAG, and the demo's runs are on Sundays)
            inside = BOUNDED[dag_id](stack["env"])
            _pick_date(
                page,
                dialog,
                dialog.get_by_text(re.compile(r"^[A-Z][a-z]{2} \d{2}, \d{4} \d{2}:\d{2}$")).first,
                inside.isoformat(),
            )
        page.screenshot(path=shots / f"{10 + i:02d}-{dag_id}-trigger-form.png", full_page=True)
        button = _submit(dialog)
        assert button.is_enabled(), f"{dag_id}: the trigger form refuses its own defaults"
        button.click()
        run_id = _wait(f"{dag_id}'s run", lambda: _new_manual_run(stack, dag_id, before), 60)
        _leave(page)
        run = _runs(stack, dag_id)[run_id]
        dag = _api(stack, "GET", f"/api/v2/dags/{dag_id}/details")
        defaults = {k: v["value"] for k, v in (dag.get("params") or {}).items()}
        assert run["conf"] == defaults, (dag_id, run["conf"], defaults)
        first = _first_task(stack, dag_id)

        def first_done():
            # the form unpaused the DAG: the scheduled run the scheduler starts for it is not what is
            # checked here (lake_maintenance's ran two minutes beside ours, ours queued behind it)
            _stop_runs(stack, dag_id, keep=run_id)
            t = _tis(stack, dag_id, run_id).get(first)
            ended = ("success", "skipped", "failed", "deferred", *(("running",) if dag_id in STARTED_IS_ENOUGH else ()))
            return t if t and t["state"] in ended else None

        if dag_id in ALWAYS_LISTENING:  # one run at a time listens (ours, or the schedule's with ours behind)
            ti = _wait(
                f"{dag_id}'s listening run",
                lambda: next(
                    (
                        t
                        for r in _runs(stack, dag_id).values()
                        if r["state"] == "running"
                        for t in [_tis(stack, dag_id, r["dag_run_id"]).get(first)]
                        if t and t["state"] == "deferred"
                    ),
                    None,
                ),
                300,
            )
            assert _runs(stack, dag_id)[run_id]["state"] in ("queued", "running")  # behind it, or it
        else:
            ti = _wait(f"{dag_id}.{first}", first_done, 900)
        state = _runs(stack, dag_id)[run_id]["state"]
        if dag_id in RUN_TO_THE_END:
            state = _wait(
                f"{dag_id}'s run to end",
                lambda: (
                    _runs(stack, dag_id)[run_id]["state"] in ("success", "failed")
                    and _runs(stack, dag_id)[run_id]["state"]
                ),
                900,
            )
        elif state in ("queued", "running"):  # the rest is the cluster tier's: stop it here
            state = "stopped after its first task"
        _settle(stack, dag_id)
        outcomes[dag_id] = {"run_id": run_id, "first_task": first, "first_task_state": ti["state"], "run": state}
        page.goto(f"{stack['base']}/dags/{dag_id}/runs/{run_id}")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=shots / f"{10 + i:02d}-{dag_id}-run.png", full_page=True)
    (shots / "outcomes.json").write_text(json.dumps(outcomes, indent=2))
    for dag_id in DAGS:
        if dag_id in RUN_TO_THE_END:
            assert outcomes[dag_id]["run"] == "success", outcomes[dag_id]
        elif dag_id in STARTED_IS_ENOUGH:
            assert outcomes[dag_id]["first_task_state"] in ("running", "success"), outcomes[dag_id]
        else:
            assert outcomes[dag_id]["first_task_state"] in ("success", "skipped", "deferred"), outcomes[dag_id]


def _tables(env: dict[str, str]) -> dict[str, Any]:
    """Every row of silver and of the feature snapshots, in a stable order, from the lake the
    demo's settings `env` name (a local folder, or Azure Storage when the demo ran on Azurite)."""
    from ml_platform.config import Settings, get_settings
    from ml_platform.lake.paths import table_path
    from ml_platform.lake.reader import read_pandas

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        s = Settings()
        out = {}
        for name in ("silver.transactions", "features.customer_features"):
            df = read_pandas(table_path(name, s))
            out[name] = df.sort_values(list(df.columns)).reset_index(drop=True).to_json()
        return out
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


#: a valid value other than the default for the params typed into text and number fields
EDITS = {
    "training": {
        "cutoffs": "2025-02-01,2025-02-08,2025-02-15",
        "last_k": 5,
        "horizon_days": 14,
        "n_trials": 2,
        "n_workers": 1,
        "families": "logreg,xgboost",
        "seed": 3,
        "distributed_workers": 2,
    },
    "serving_deploy": {
        "min_auc_gain": 0.01,
        "calibration_tolerance": 0.03,
        "fairness_tolerance": 0.1,
        "latency_p99_ms": 500,
        "floor_auc": 0.6,
        "floor_max_ece": 0.2,
        "smoke_p99_ms": 900,
    },
    "monitoring": {"q_value": 0.1, "effect_threshold": 0.2},
    "features_build": {"quarantine_max_share": 0.1},
    "lake_maintenance": {"tables": "silver.transactions,features.customer_features"},
}


def test_edited_params_reach_the_run_as_typed(stack, page, shots):
    for dag_id, edits in EDITS.items():
        dialog = _open_trigger_form(page, stack, dag_id)
        for name, value in edits.items():
            field = dialog.locator(f"[name='element_{name}']")
            field.fill(str(value))
            field.blur()
        page.wait_for_timeout(500)
        page.screenshot(path=shots / f"25-{dag_id}-edited-form.png", full_page=True)
        before = set(_runs(stack, dag_id))
        _submit(dialog).click()
        run_id = _wait(f"{dag_id}'s run", lambda: _new_manual_run(stack, dag_id, before), 60)
        conf = _runs(stack, dag_id)[run_id]["conf"]
        _settle(stack, dag_id)  # what runs with these values is the other tests' concern
        assert {k: conf[k] for k in edits} == edits, (dag_id, conf)


def test_every_result_link_opens_its_page(stack, page, shots):
    links = {  # (dag, task): link names the demo's runs must carry
        ("training", "register"): ["MLflow run", "Model version"],
        ("training", "evaluation_report"): ["Evaluation report"],
        ("features_build", "ingest_validate_features"): ["Gate result", "GE data docs"],
        ("monitoring", "detect_drift"): ["Drift report"],
        ("serving_deploy", "apply_decision"): ["Champion version"],
        ("serving_deploy", "confirm_serving"): ["Service API docs"],
    }
    from urllib.parse import quote

    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    seen = []
    for (dag_id, task_id), names in links.items():
        run = next(
            r
            for r in sorted(_runs(stack, dag_id).values(), key=lambda r: r["start_date"] or "", reverse=True)
            if r["state"] == "success"
            and _tis(stack, dag_id, r["dag_run_id"]).get(task_id, {}).get("state") == "success"
        )
        got = _api(
            stack, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'])}/taskInstances/{task_id}/links"
        )["extra_links"]
        for name in names:
            url = got.get(name)
            assert url, (dag_id, task_id, name, got)
            page.goto(f"{stack['base']}/dags/{dag_id}/runs/{quote(run['dag_run_id'])}/tasks/{task_id}/details")
            page.wait_for_load_state("networkidle")
            button = page.get_by_role("link", name=name)
            try:  # the UI asks for the links after the task instance: networkidle can come first
                button.first.wait_for(state="visible", timeout=30_000)
            except PlaywrightTimeout:
                pytest.fail(f"no {name!r} button on {dag_id}.{task_id} within 30 s")
            if button.first.get_attribute("target") == "_blank":  # another site: a new tab
                with page.context.expect_page() as new:
                    button.first.click()
                target = new.value
            else:  # the UI's own origin (served reports): the same tab
                button.first.click()
                page.wait_for_url(lambda u: "/ml-platform/files/" in u)
                target = page
            target.wait_for_load_state("load")
            target.wait_for_timeout(1500)  # let a single-page app (MLflow, Swagger UI) render
            answer = page.request.get(target.url)
            assert answer.status == 200, (name, url, target.url, answer.status)
            slug = re.sub(r"\W+", "-", f"{dag_id}-{task_id}-{name}").lower()
            target.screenshot(path=shots / f"50-{slug}.png", full_page=False)
            if target is not page:
                target.close()
            seen.append(name)
    assert sorted(seen) == sorted(n for names in links.values() for n in names)


def test_the_service_api_docs_render_without_internet(stack, browser, shots):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        pg = context.new_page()
        outside = []
        pg.on("request", lambda r: outside.append(r.url) if not r.url.startswith(stack["service"]) else None)
        _wait("the service", lambda: _healthy(stack["service"]), 120, 1)
        pg.goto(stack["service"] + "/docs")
        pg.wait_for_selector("text=/predict", timeout=30_000)  # Swagger UI rendered the operations
        pg.screenshot(path=shots / "60-service-docs.png", full_page=True)
        assert outside == [], f"the docs page loads from outside the service: {outside}"
    finally:
        context.close()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            return r.status == 200
    except OSError:
        return False

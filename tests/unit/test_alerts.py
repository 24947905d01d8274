"""Alerts against a real local HTTP receiver: delivery, retries, a slow and a refusing receiver."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml_platform.config import Settings
from ml_platform.monitoring.alerts import send_alert, task_failure_alert

pytestmark = pytest.mark.unit


class Receiver:
    """Answers with the next status of `script` (then 200); `delay` seconds before each answer."""

    def __init__(self, script: list[int] | None = None, delay: float = 0.0) -> None:
        self.script, self.delay, self.bodies = list(script or []), delay, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                time.sleep(outer.delay)
                status = outer.script.pop(0) if outer.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    made = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _settings(tmp_path, url: str = "", **kw) -> Settings:
    return Settings(home=tmp_path, alert_webhook_url=url, **kw)


def test_without_a_webhook_the_alert_is_logged(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="ml_platform.alerts"):
        out = send_alert("drift", "tenure drifted", {"psi": 0.31}, _settings(tmp_path))
    assert out == {"logged": True, "webhook": None}
    assert "ALERT drift: tenure drifted" in caplog.text and '"psi": 0.31' in caplog.text


def test_delivered_after_server_errors_with_retries(tmp_path, receiver):
    r = receiver(script=[500, 503])
    out = send_alert("performance", "AUC dropped", {"auc": 0.61}, _settings(tmp_path, r.url))
    assert out["webhook"] == "sent" and out["attempts"] == 3 and len(r.bodies) == 3
    assert r.bodies[-1]["kind"] == "performance" and r.bodies[-1]["details"] == {"auc": 0.61}


def test_a_refusing_or_slow_receiver_never_raises(tmp_path, receiver, caplog):
    refusing = receiver(script=[400])
    out = send_alert("gate", "challenger rejected", None, _settings(tmp_path, refusing.url))
    assert out["webhook"] == "failed: HTTP 400" and len(refusing.bodies) == 1  # a 4xx is not retried
    slow = receiver(delay=1.5)
    t = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="ml_platform.alerts"):
        out = send_alert(
            "gate", "slow", None, _settings(tmp_path, slow.url, alert_timeout_seconds=0.3, alert_retries=2)
        )
    assert out["webhook"].startswith("failed: ") and out["attempts"] == 2 and time.monotonic() - t < 3
    assert "not delivered to the webhook after 2 attempt(s)" in caplog.text
    dead = send_alert("gate", "nobody", None, _settings(tmp_path, "http://127.0.0.1:9/x", alert_retries=1))
    assert dead["webhook"].startswith("failed: URLError")


def test_the_task_failure_callback_names_the_task(tmp_path, receiver, monkeypatch):
    r = receiver()
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path))
    monkeypatch.setenv("ML_PLATFORM_ALERT_WEBHOOK_URL", r.url)
    from ml_platform.config import get_settings

    class TI:
        dag_id, task_id, run_id, try_number = "training", "register", "manual__1", 2

    get_settings.cache_clear()  # the callback reads the process settings, as in a task
    try:
        task_failure_alert({"task_instance": TI(), "exception": ValueError("boom")})
    finally:
        get_settings.cache_clear()
    assert r.bodies[0]["title"] == "training.register failed" and r.bodies[0]["details"]["error"] == "boom"

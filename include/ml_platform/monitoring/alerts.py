"""Alerts: always logged; also POSTed as JSON to a webhook when `ML_PLATFORM_ALERT_WEBHOOK_URL` is set.

`send_alert` never raises: an alert that cannot be delivered is logged with the reason, and the
caller's own outcome (a failed task, a drift finding) stands. The POST has a timeout and a few
attempts with backoff (settings `alert_timeout_seconds`, `alert_retries`); a 4xx answer is not
retried. `task_failure_alert` is the `on_failure_callback` of every DAG's tasks. Standard library
only: DAG files import this module at parse time.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

from ml_platform.config import get_settings

log = logging.getLogger("ml_platform.alerts")


def send_alert(kind: str, title: str, details: dict[str, Any] | None = None, settings: Any = None) -> dict[str, Any]:
    """Log the alert and deliver it to the webhook if one is configured; returns what happened."""
    s = settings or get_settings()
    body = {
        "kind": kind,
        "title": title,
        "details": details or {},
        "source": "ml-platform",
        "sent_at": datetime.now(timezone.utc).isoformat(),
    }
    log.warning("ALERT %s: %s %s", kind, title, json.dumps(details or {}, default=str, sort_keys=True))
    if not s.alert_webhook_url:
        return {"logged": True, "webhook": None}
    data = json.dumps(body, default=str).encode()
    error = ""
    for attempt in range(1, s.alert_retries + 1):
        req = urllib.request.Request(
            s.alert_webhook_url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=s.alert_timeout_seconds) as resp:
                return {"logged": True, "webhook": "sent", "status": resp.status, "attempts": attempt}
        except urllib.error.HTTPError as e:
            error = f"HTTP {e.code}"
            if 400 <= e.code < 500:
                break  # the receiver refuses this alert; sending it again will not help
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
        if attempt < s.alert_retries:
            time.sleep(0.5 * 2 ** (attempt - 1))
    log.error("alert %r not delivered to the webhook after %d attempt(s): %s", title, attempt, error)
    return {"logged": True, "webhook": f"failed: {error}", "attempts": attempt}


def task_failure_alert(context: dict[str, Any]) -> None:
    """Airflow `on_failure_callback`: one alert naming the DAG, task, run and the error."""
    ti = context.get("task_instance") or context.get("ti")
    send_alert(
        "task_failed",
        f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')} failed",
        {
            "dag_id": getattr(ti, "dag_id", None),
            "task_id": getattr(ti, "task_id", None),
            "run_id": getattr(ti, "run_id", None),
            "try_number": getattr(ti, "try_number", None),
            "error": str(context.get("exception") or "")[:1000],
        },
    )

"""The frame of every `spark_jobs/` entry point, on the engine the job chose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ml_platform.engines.base import Engine, SparkEngine
from ml_platform.errors import MlPlatformError


def run_job(
    name: str, body: Callable[[Engine, dict[str, Any]], None], *, engine: Callable[[], Engine] | None = None
) -> int:
    """Run job `name`: `body(engine, out)` fills the result dict `out`, which is printed as ONE
    stdout line `<NAME>_RESULT {json}` (also when a step failed, so the task log shows what was
    done). `engine` chooses the engine of a job either engine can do (`engines.choice`): the choice
    comes first, is printed and kept in `out`; without it the job is a Spark job. The engine is
    started before the body (a Spark session named `name`; nothing on the embedded engine) and
    stopped after it. An `MlPlatformError` (bad input, a failed gate, an engine that cannot run
    here) is exit 2 with `<name> failed: <reason>` on stderr; anything else is a bug and keeps its
    traceback."""
    import json
    import sys
    import time

    t0 = time.perf_counter()
    out: dict[str, Any] = {"seconds": {}}
    try:
        chosen = engine() if engine is not None else SparkEngine(f"{name} is a Spark job")
        if engine is not None:
            print(f"{name}: {chosen.name} engine ({chosen.reason})", flush=True)
            out["engine"] = chosen.to_json()
        if chosen.start(name) is not None:
            out["seconds"]["spark_session"] = round(time.perf_counter() - t0, 1)
    except MlPlatformError as e:  # the cluster or a setting: nothing was written
        print(f"{name} failed: {e}", file=sys.stderr)
        return 2
    try:
        body(chosen, out)
    except MlPlatformError as e:
        print(f"{name} failed: {e}", file=sys.stderr)
        return 2
    finally:
        print(f"{name.upper()}_RESULT " + json.dumps(out, default=str), flush=True)
        chosen.stop()
    return 0

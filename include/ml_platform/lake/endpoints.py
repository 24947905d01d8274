"""The network services the platform's stores sit behind: the Spark master and the MLflow tracking
server. A job checks the one it needs before it starts, so a service that is down is one clear
error naming it (exit 2 for the CLI and `spark_jobs/`, a failed try that Airflow retries for a task)
instead of a JVM that waits for a master, or an MLflow client that retries for minutes, before a
stack trace."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from ml_platform.errors import ConfigError, MlPlatformError


class Unreachable(MlPlatformError):
    """A service the job needs does not accept connections."""


def _addresses(url: str) -> list[tuple[str, int]]:
    """host:port pairs of `url`; a standalone master may list several (`spark://h1:7077,h2:7077`)."""
    parts = urlsplit(url)
    default = {"spark": 7077, "http": 80, "https": 443, "sc": 15002}.get(parts.scheme)
    out = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            out.append((host.strip("[]"), int(port) if port else int(default or 0)))
        except ValueError:
            raise ConfigError(f"{url!r}: the port {port!r} is not a number") from None
    if not out or not all(host and port for host, port in out):
        raise ConfigError(f"{url!r} names no host:port")
    return out


def require_reachable(url: str, what: str, hint: str, timeout: float = 5.0) -> None:
    """Raise `Unreachable` naming `what`, `url` and `hint` unless one of its addresses accepts a TCP
    connection within `timeout` seconds."""
    errors = []
    for host, port in _addresses(url):
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as e:
            errors.append(f"{host}:{port}: {e.strerror or e.__class__.__name__}")
    raise Unreachable(f"{what} {url} is not reachable ({'; '.join(errors)}): {hint}")


def use_mlflow(tracking_uri: str) -> None:
    """Point MLflow's runs and registry at `tracking_uri` (one store for both), after checking that
    a tracking server there answers (a database or file store is the client's own)."""
    import mlflow

    if tracking_uri.startswith(("http://", "https://")):
        require_reachable(
            tracking_uri,
            "the MLflow tracking server",
            "start it (scripts/mlflow_ui.sh, or the topology's mlflow service) or fix ML_PLATFORM_MLFLOW_TRACKING_URI",
        )
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)

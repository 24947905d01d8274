"""The MLflow tracking server as the platform starts it (`scripts/mlflow_ui.sh` in its server role):
MLflow's basic-auth app is on, the admin comes from the environment only, and moving `@champion`
needs the admin or an account granted it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.serving_helpers import with_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ADMIN = {"MLFLOW_TRACKING_USERNAME": "platform", "MLFLOW_TRACKING_PASSWORD": "a-long-test-password"}


def test_the_tracking_server_refuses_anonymous_and_read_only_alias_moves(tmp_path, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ml_platform.serving.bento import free_port

    home, port = tmp_path / "home", free_port()
    env = {
        "ML_PLATFORM_HOME": str(home),
        "ML_PLATFORM_MLFLOW_PORT": str(port),
        "ML_PLATFORM_MLFLOW_BACKEND_STORE": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "ML_PLATFORM_MLFLOW_ARTIFACTS": str(tmp_path / "artifacts"),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "form-key",
    }
    script = ["bash", str(ROOT / "scripts" / "mlflow_ui.sh")]
    # no admin password in the environment: the server does not start, and says which variable
    out = subprocess.run(script, env=with_env(env), capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "MLFLOW_TRACKING_PASSWORD" in out.stderr, out.stderr
    assert not (home / "run" / "mlflow-ui.pid").exists()
    up = subprocess.run(script, env=with_env(env | ADMIN), capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        for k in ADMIN:
            monkeypatch.delenv(k, raising=False)
        with pytest.raises(MlflowException, match="401|[Uu]nauthori"):
            MlflowClient(url).search_registered_models()
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "platform")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
        with pytest.raises(MlflowException, match="401|[Uu]nauthori"):
            MlflowClient(url).search_registered_models()

        for k, v in ADMIN.items():
            monkeypatch.setenv(k, v)
        admin = MlflowClient(url)
        run = admin.create_run(admin.create_experiment("auth-check"))
        admin.create_registered_model("churn_model")
        v = admin.create_model_version("churn_model", f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version
        admin.set_registered_model_alias("churn_model", "champion", v)

        import mlflow.server

        mlflow.server.get_app_client("basic-auth", tracking_uri=url).create_user("analyst", "analyst-password-1")
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "analyst")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "analyst-password-1")
        analyst = MlflowClient(url)
        assert analyst.get_model_version_by_alias("churn_model", "champion").version == v  # READ by default
        with pytest.raises(MlflowException, match="PERMISSION_DENIED|403|[Pp]ermission"):
            analyst.set_registered_model_alias("churn_model", "champion", v)
        assert (home / "mlflow" / "basic_auth.db").exists()  # the users, in the home, not the checkout
        assert not (ROOT / "basic_auth.db").exists()
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=with_env(env), capture_output=True, timeout=60)
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)

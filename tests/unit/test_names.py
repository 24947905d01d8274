"""One rule for every name and id that becomes a folder, a catalog file or a literal in a Delta
predicate (issue 20, finding 4): a training-set id with a quote could have replaced every training
set (`replaceWhere training_set_id = '...'`), a feature-table name with `..` wrote outside the catalog."""

from __future__ import annotations

import pytest

from ml_platform import cli
from ml_platform.errors import InvalidName, MlPlatformError
from ml_platform.lake.paths import catalog_dir, check_id, check_table_name, table_path

pytestmark = pytest.mark.unit

BAD_IDS = ["x' OR '1'='1", "../x", "a/b", "", "a" * 65, "-lead", "ü", "a b", "a\x00b", "x'--", None, 7]


@pytest.mark.parametrize("good", ["e2e", "train-0123456789ab", "A_b-9", "a" * 64])
def test_ids_of_letters_digits_dash_and_underscore_pass(good):
    assert check_id(good, "training_set_id") == good


@pytest.mark.parametrize("bad", BAD_IDS)
def test_every_other_id_is_refused_naming_what_it_is(bad):
    with pytest.raises(InvalidName, match=r"^bad training_set_id .*: use 1-64 letters"):
        check_id(bad, "training_set_id")
    assert issubclass(InvalidName, MlPlatformError)


@pytest.mark.parametrize("bad", ["../features.x", "features.x/../../y", "Features.X", "features", "a.b.c", ""])
def test_table_names_follow_one_rule_for_paths_and_the_catalog(bad, tmp_path):
    from ml_platform.config import Settings
    from ml_platform.features.registry import Registry

    with pytest.raises(InvalidName, match="bad table name"):
        check_table_name(bad)
    with pytest.raises(InvalidName):
        table_path(bad, Settings(home=tmp_path))
    with pytest.raises(InvalidName):
        Registry(tmp_path / "catalog").get(bad)


def test_a_feature_table_named_to_escape_the_catalog_writes_nothing(tmp_path):
    from ml_platform.features.registry import FeatureSpec, FeatureTable, Registry

    table = FeatureTable(
        name="../../escaped", primary_keys=["customer_id"], timestamp_key="ts", features=[FeatureSpec("f", "double")]
    )
    with pytest.raises(InvalidName):
        Registry(tmp_path / "catalog").put(table)
    assert not any(tmp_path.rglob("*.json"))


def test_a_training_set_id_with_a_quote_never_reaches_the_delta_predicate(tmp_path):
    from ml_platform.config import Settings
    from ml_platform.features.offline import OfflineStore
    from ml_platform.features.registry import Registry
    from ml_platform.features.store import FeatureStore

    s = Settings(home=tmp_path)

    def no_spark():
        raise AssertionError("a Spark session was asked for")

    offline = OfflineStore(s, Registry(catalog_dir(s)), no_spark)
    with pytest.raises(InvalidName, match="training_set_id"):
        offline.write_training_set(None, "x' OR '1'='1")  # refused before the frame is touched
    with pytest.raises(InvalidName, match="training_set_id"):
        FeatureStore(settings=s).get_training_set("../../etc/passwd")


@pytest.mark.parametrize(
    "argv",
    [
        ["features", "training-set", "--cutoffs", "2025-01-04", "--id", "x' OR '1'='1"],
        ["features", "describe", "../features.customer_features"],
        ["features", "publish", "features.x/../../y"],
    ],
)
def test_the_cli_refuses_a_bad_name_before_spark_with_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and ("bad --id" in err or "bad table name" in err), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("redis at redis://:s3cret@10.0.0.5:6379/0", "s3cret"),
        ("could not connect to postgresql+psycopg2://airflow:pa:ss@db:5432/airflow", "pa:ss"),
        ("https://acct.blob.core.windows.net/c?sv=2024&sig=AbC%2Fxyz&se=1", "AbC%2Fxyz"),
        ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFy==;", "Zm9vYmFy=="),
        ("dsn host=db password=hunter2 user=x", "hunter2"),
    ],
)
def test_secrets_in_urls_and_key_values_are_redacted_from_messages(text, secret):
    from ml_platform.errors import redact

    out = redact(text)
    assert secret not in out and "***" in out
    assert (
        redact("redis://127.0.0.1:6379/0 sqlite at /x/features.db")
        == "redis://127.0.0.1:6379/0 sqlite at /x/features.db"
    )


def test_readiness_names_the_redis_without_its_password(tmp_path):
    """/readyz is unauthenticated: the online store's address is shown, its password never."""
    import socket

    from ml_platform.config import Settings
    from ml_platform.serving.models import ModelHolder
    from ml_platform.serving.scorer import Scorer

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    s = Settings(
        home=tmp_path, online_store="redis", redis_url=f"redis://:hunter2@127.0.0.1:{port}/0", redis_timeout_seconds=1
    )
    scorer = Scorer(s, ModelHolder(s, want_challenger=False))
    why = scorer.check_online()
    assert why and f"127.0.0.1:{port}" in why and "hunter2" not in why, why


def test_explain_has_its_own_smaller_cap(tmp_path):
    from ml_platform.config import Settings
    from ml_platform.serving.models import ModelHolder
    from ml_platform.serving.routing import PredictRequest
    from ml_platform.serving.scorer import ClientError, Scorer

    s = Settings(home=tmp_path, serving_max_explain_rows=3)
    scorer = Scorer(s, ModelHolder(s, want_challenger=False))
    with pytest.raises(ClientError, match="4 items with explain=true; the limit is 3"):
        scorer.predict(PredictRequest(customer_ids=["a", "b", "c", "d"]), explain=True)
    with pytest.raises(Exception) as no_model:  # within the cap: on to scoring (no champion here: 503)
        scorer.predict(PredictRequest(customer_ids=["a", "b", "c"]), explain=True)
    assert "explain" not in str(no_model.value) and "@champion" in str(no_model.value)

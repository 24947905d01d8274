"""Azure Storage credentials from an Airflow connection of the provider's types (wasb, adls)."""

from __future__ import annotations

import pytest

from ml_platform.errors import ConfigError
from ml_platform.lake.storage import CREDENTIAL_VARIABLES, connection_env
from ml_platform.locations import normalize, parse

pytestmark = pytest.mark.unit
KEY, SAS = "a2V5LXNlY3JldA==", "sv=2024-01-01&sig=abc%2Bdef"


def _set(env: dict[str, str]) -> dict[str, str]:
    assert set(env) == set(CREDENTIAL_VARIABLES)  # every credential setting, so nothing of the environment mixes in
    return {k.removeprefix("ML_PLATFORM_AZURE_"): v for k, v in env.items() if v}


@pytest.mark.parametrize(
    ("conn_type", "login", "password", "extra", "expected"),
    [
        (
            "wasb",
            None,
            None,
            {
                "connection_string": f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey={KEY};"
                "BlobEndpoint=http://127.0.0.1:1/a;"
            },
            {"STORAGE_ACCOUNT_KEY": KEY},
        ),  # base64 "=" inside the key survives the parsing
        (
            "wasb",
            "acct",
            None,
            {"connection_string": f"BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature={SAS}"},
            {"STORAGE_SAS_TOKEN": SAS},
        ),
        (
            "wasb",
            "app-id",
            "app-secret",
            {"tenant_id": "tenant"},
            {"CLIENT_ID": "app-id", "CLIENT_SECRET": "app-secret", "TENANT_ID": "tenant"},
        ),
        (
            "adls",
            "app-id",
            "app-secret",
            {"extra__adls__tenant_id": "tenant"},  # the old prefixed extra names
            {"CLIENT_ID": "app-id", "CLIENT_SECRET": "app-secret", "TENANT_ID": "tenant"},
        ),
        ("wasb", "acct", None, {"shared_access_key": KEY}, {"STORAGE_ACCOUNT_KEY": KEY}),
        ("wasb", "acct", None, {"sas_token": f"https://acct.blob.core.windows.net/?{SAS}"}, {"STORAGE_SAS_TOKEN": SAS}),
        ("wasb", "acct", None, {"sas_token": "?" + SAS}, {"STORAGE_SAS_TOKEN": SAS}),
        ("wasb", "acct", KEY, {}, {"STORAGE_ACCOUNT_KEY": KEY}),
        ("wasb", "acct", None, {"account_key": KEY}, {"STORAGE_ACCOUNT_KEY": KEY}),
        ("wasb", "acct", None, {}, {}),  # the platform's (managed or workload) identity
        ("wasb", "acct", None, {"managed_identity_client_id": "mi-id"}, {"CLIENT_ID": "mi-id"}),
    ],
)
def test_each_credential_form_of_the_providers_connections(conn_type, login, password, extra, expected):
    assert _set(connection_env(conn_type, login, password, extra)) == expected


@pytest.mark.parametrize(
    ("conn_type", "login", "password", "extra", "message"),
    [
        ("http", "a", "b", {}, "connection type 'http' does not hold Azure Storage credentials"),
        ("wasb", None, None, {"connection_string": "BlobEndpoint=http://x;AccountName=a"}, "neither AccountKey"),
        ("wasb", "app-id", None, {"tenant_id": "t"}, "needs the client id as login and the secret as password"),
    ],
)
def test_an_unusable_connection_is_a_config_error_without_the_secret(conn_type, login, password, extra, message):
    with pytest.raises(ConfigError, match=message) as e:
        connection_env(conn_type, login, password, extra)
    assert "b" != str(e.value) and KEY not in str(e.value)


def test_the_landing_sensor_prefix_comes_from_the_landing_uri():
    loc = parse(normalize("https://acct.blob.core.windows.net/landing/zone/in"))
    assert (loc.account, loc.container, loc.path) == ("acct", "landing", "zone/in")

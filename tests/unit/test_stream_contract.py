"""The event stream's settings and contract without a broker: the Event Hubs login from a
connection string (TLS for a namespace, none for the local broker), bad settings named, the secret
never in a repr, and the checked-in JSON Schema equal to the contract's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_platform.config import Settings
from ml_platform.errors import ConfigError
from ml_platform.streaming.connection import LOCAL_CONNECTION_STRING, event_stream
from ml_platform.streaming.events import json_schema

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
AZURE = "Endpoint=sb://ns1.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0"


def test_a_namespace_gets_sasl_over_tls_and_the_local_broker_plain_sasl(tmp_path):
    azure = event_stream(
        Settings(
            home=tmp_path, event_hubs_bootstrap="ns1.servicebus.windows.net:9093", event_hubs_connection_string=AZURE
        )
    )
    assert azure.client_config() == {
        "bootstrap.servers": "ns1.servicebus.windows.net:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "$ConnectionString",
        "sasl.password": AZURE,
    }
    options = azure.spark_options()
    assert (
        options["kafka.security.protocol"] == "SASL_SSL" and f'password="{AZURE}"' in options["kafka.sasl.jaas.config"]
    )
    assert "c2VjcmV0" not in repr(azure)
    local = event_stream(Settings(home=tmp_path))
    assert (local.bootstrap, local.tls, local.password) == ("127.0.0.1:19092", False, LOCAL_CONNECTION_STRING)
    forced = event_stream(Settings(home=tmp_path, event_hubs_tls="on"))
    assert forced.client_config()["security.protocol"] == "SASL_SSL"


@pytest.mark.parametrize(
    ("update", "named"),
    [
        ({"event_hubs_bootstrap": "no-port"}, "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP"),
        ({"event_hubs_bootstrap": "h:99999"}, "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP"),
        ({"event_hubs_bootstrap": " , "}, "ML_PLATFORM_EVENT_HUBS_BOOTSTRAP is empty"),
        ({"event_hubs_connection_string": 'Endpoint=sb://x/;SharedAccessKey="q'}, "is not a connection string"),
        ({"event_hubs_connection_string": "password123"}, "is not a connection string"),
        ({"event_hubs_topic": "a b"}, "ML_PLATFORM_EVENT_HUBS_TOPIC"),
        ({"event_hubs_scores_topic": "x" * 300}, "ML_PLATFORM_EVENT_HUBS_SCORES_TOPIC"),
    ],
)
def test_bad_stream_settings_are_named_without_the_secret(tmp_path, update, named):
    with pytest.raises(ConfigError, match=named) as e:
        event_stream(Settings(home=tmp_path, **update))
    assert "password123" not in str(e.value)


def test_the_checked_in_event_schema_is_the_contracts():
    assert json.loads((ROOT / "docs" / "schemas" / "transaction-event.json").read_text()) == json_schema()
    assert json_schema()["required"] == ["customer_id", "transaction_id", "transaction_ts", "amount"]

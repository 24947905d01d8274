"""The event stream's endpoint, logged in to the way Event Hubs expects: SASL PLAIN with the user
`$ConnectionString` and the namespace's connection string as the password, over TLS (port 9093)
against Azure and without TLS against the local broker (`scripts/kafka.sh`). The same settings
give the Kafka client's configuration and Spark's Kafka source options; the secret is never in
a message, a log line or a `repr`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ml_platform.config import Settings, get_settings
from ml_platform.errors import ConfigError, MlPlatformError

#: The local broker's login (scripts/kafka.sh): not a secret, like Azurite's well-known key.
LOCAL_CONNECTION_STRING = (
    "Endpoint=sb://127.0.0.1/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=bG9jYWwtYnJva2Vy"
)
USER = "$ConnectionString"


@dataclass(frozen=True)
class EventStream:
    """Where the events are and how to log in."""

    bootstrap: str
    topic: str
    scores_topic: str
    tls: bool
    password: str = field(repr=False)

    def client_config(self) -> dict[str, Any]:
        """librdkafka's configuration (confluent-kafka)."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_SSL" if self.tls else "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": USER,
            "sasl.password": self.password,
        }

    def spark_options(self) -> dict[str, str]:
        """Spark's Kafka source and sink options (`kafka.`-prefixed client settings)."""
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{USER}" password="{self.password}";'
        )
        return {
            "kafka.bootstrap.servers": self.bootstrap,
            "kafka.security.protocol": "SASL_SSL" if self.tls else "SASL_PLAINTEXT",
            "kafka.sasl.mechanism": "PLAIN",
            "kafka.sasl.jaas.config": jaas,
        }


def event_stream(settings: Settings | None = None) -> EventStream:
    """The event stream of these settings; `ConfigError` naming the setting when it cannot be used."""
    s = settings or get_settings()
    hosts = [h.strip() for h in s.event_hubs_bootstrap.split(",") if h.strip()]
    for h in hosts:
        host, _, port = h.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"ML_PLATFORM_EVENT_HUBS_BOOTSTRAP: {h!r} is not host:port")
    if not hosts:
        raise ConfigError("ML_PLATFORM_EVENT_HUBS_BOOTSTRAP is empty")
    password = (
        s.event_hubs_connection_string.get_secret_value() if s.event_hubs_connection_string else LOCAL_CONNECTION_STRING
    )
    if '"' in password or "\n" in password or not password.startswith("Endpoint="):
        raise ConfigError("ML_PLATFORM_EVENT_HUBS_CONNECTION_STRING is not a connection string (Endpoint=sb://...;...)")
    for name, topic in (("TOPIC", s.event_hubs_topic), ("SCORES_TOPIC", s.event_hubs_scores_topic)):
        if not topic or len(topic) > 249 or not all(c.isalnum() or c in "._-" for c in topic):
            raise ConfigError(f"ML_PLATFORM_EVENT_HUBS_{name}: {topic!r} is not a topic name (letters, digits, . _ -)")
    tls = s.event_hubs_tls == "on" or (
        s.event_hubs_tls == "auto" and all(h.rpartition(":")[0].endswith(".servicebus.windows.net") for h in hosts)
    )
    return EventStream(",".join(hosts), s.event_hubs_topic, s.event_hubs_scores_topic, tls, password)


def check_login(stream: EventStream, timeout: float = 15.0) -> list[int]:
    """The partitions of the events' topic, once the endpoint accepted the login; `MlPlatformError`
    in one line naming the endpoint (never the secret) when it cannot be reached or refuses."""
    import time

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list[str] = []
    admin = AdminClient({**stream.client_config(), "error_cb": lambda e: errors.append(e.str())})
    deadline, meta = time.monotonic() + timeout, None
    while meta is None:  # short tries: a refused login is reported at once, not after the timeout
        try:
            meta = admin.list_topics(stream.topic, timeout=1.0)
        except KafkaException as e:
            admin.poll(0)  # serves error_cb: the broker's reason
            refused = next((x for x in errors if "auth" in x.lower()), None)
            if refused or time.monotonic() > deadline:
                why = refused or (errors[-1] if errors else str(e.args[0]))
                raise MlPlatformError(
                    f"the event stream at {stream.bootstrap} did not accept the login or answer: {_no_secret(why, stream)}"
                ) from None
    topic = meta.topics.get(stream.topic)
    if topic is None or topic.error is not None:
        raise MlPlatformError(f"the event stream at {stream.bootstrap} has no topic {stream.topic!r}")
    return sorted(topic.partitions)


def _no_secret(text: str, stream: EventStream) -> str:
    return text.replace(stream.password, "***")

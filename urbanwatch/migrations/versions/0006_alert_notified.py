"""Whether an alert's firing spell was announced, so a muted one is dispatched when unmuted.

Alerts that already belong to an incident were announced; the others (silenced, inhibited or
flapping when this ran) are announced by the first decision that finds nothing muting them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.add_column(
            sa.Column("notified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    incidents = sa.table("incidents", sa.column("members", sa.JSON()))
    alerts = sa.table("alerts", sa.column("id", sa.String()), sa.column("notified", sa.Boolean()))
    connection = op.get_bind()
    members = connection.execute(sa.select(incidents.c.members)).scalars()
    announced = sorted({m["alert_id"] for group in members for m in group or ()})
    for start in range(0, len(announced), 500):
        chunk = announced[start : start + 500]
        connection.execute(alerts.update().where(alerts.c.id.in_(chunk)).values(notified=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_column("notified")

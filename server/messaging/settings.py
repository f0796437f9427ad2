"""Per-unit acknowledgement deadlines (urgent / normal minutes of open time), with the configured defaults."""

from __future__ import annotations

import uuid

from server.audit.service import record
from server.core import policy
from server.core.principal import Principal
from server.messaging import store
from server.messaging.deps import Deps
from server.messaging.models import UnitMessagingSettings
from server.messaging.schemas import UnitSettingsOut


class UnitSettings:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def deadline_minutes(self, unit_id: uuid.UUID, priority: str) -> int:
        async with self.deps.db.transaction() as session:
            settings = await store.unit_settings(session, unit_id)
        if settings is not None:
            return settings.urgent_minutes if priority == "urgent" else settings.normal_minutes
        config = self.deps.config
        return config.urgent_ack_minutes if priority == "urgent" else config.normal_ack_minutes

    async def get_unit_settings(self, principal: Principal, unit_id: uuid.UUID) -> UnitSettingsOut:
        policy.require(principal, "unit.act_for", unit_id)
        return UnitSettingsOut(
            unit_id=unit_id,
            urgent_minutes=await self.deadline_minutes(unit_id, "urgent"),
            normal_minutes=await self.deadline_minutes(unit_id, "normal"),
        )

    async def set_unit_settings(
        self, principal: Principal, unit_id: uuid.UUID, urgent: int, normal: int
    ) -> UnitSettingsOut:
        policy.require(principal, "unit.administer", unit_id, detail="Only a unit administrator can change deadlines.")
        clock = self.deps.clock
        async with self.deps.write_transaction() as session:
            row = await store.unit_settings(session, unit_id)
            if row is None:
                row = UnitMessagingSettings(
                    unit_id=unit_id, urgent_minutes=urgent, normal_minutes=normal, updated_at=clock()
                )
                session.add(row)
            else:
                row.urgent_minutes, row.normal_minutes, row.updated_at = urgent, normal, clock()
            await record(
                session,
                actor=principal,
                action="messaging.settings",
                object_type="unit",
                object_id=unit_id,
                unit_id=unit_id,
            )
        return UnitSettingsOut(unit_id=unit_id, urgent_minutes=urgent, normal_minutes=normal)

"""The authenticated caller as every service sees it: framework-free and immutable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

SYSTEM_ROLES = ("directory_admin", "auditor", "followup")  # followup: regional follow-up (Storsthlm analyst)
UNIT_ROLES = ("member", "unit_admin")


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    display_name: str
    system_roles: frozenset[str] = frozenset()
    unit_roles: dict[uuid.UUID, str] = field(default_factory=dict)  # unit id -> member | unit_admin
    auth_method: str = "token"  # token | session
    acr: str | None = None
    session_id: str | None = None  # SHA-256 of the session cookie (never the cookie itself)
    csrf_token: str | None = field(default=None, repr=False)  # for cookie sessions: X-CSRF-Token value
    issuer: str | None = None
    token_id: uuid.UUID | None = None  # for bearer principals: which personal access token
    # Set only for a meeting guest (patient/relative who redeemed a video guest link): the one
    # meeting this principal may act in. Guests have no units or roles, so every other rule denies.
    guest_meeting_id: uuid.UUID | None = None

    @property
    def is_guest(self) -> bool:
        return self.guest_meeting_id is not None

    @property
    def unit_ids(self) -> frozenset[uuid.UUID]:
        return frozenset(self.unit_roles)

    def has_role(self, role: str) -> bool:
        return role in self.system_roles

    def is_member_of(self, unit_id: uuid.UUID) -> bool:
        return unit_id in self.unit_roles

    def is_unit_admin_of(self, unit_id: uuid.UUID) -> bool:
        return self.unit_roles.get(unit_id) == "unit_admin"

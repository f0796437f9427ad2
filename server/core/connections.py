"""Which principal is behind each socket.io connection on this node."""

from __future__ import annotations

import uuid

from server.core.principal import Principal


class Connections:
    """Which principal is behind each socket on this node, and which sockets each user has."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Principal] = {}
        self.sids_by_user: dict[uuid.UUID, set[str]] = {}

    def add(self, sid: str, principal: Principal) -> None:
        self.by_sid[sid] = principal
        self.sids_by_user.setdefault(principal.user_id, set()).add(sid)

    def remove(self, sid: str) -> Principal | None:
        principal = self.by_sid.pop(sid, None)
        if principal is not None:
            sids = self.sids_by_user.get(principal.user_id, set())
            sids.discard(sid)
            if not sids:
                self.sids_by_user.pop(principal.user_id, None)
        return principal

    def replace(self, sid: str, principal: Principal) -> None:
        if sid in self.by_sid:
            self.by_sid[sid] = principal

    def of_user(self, user_id: uuid.UUID) -> set[str]:
        return set(self.sids_by_user.get(user_id, ()))

"""The one place that answers "may this principal do X on object Y?".

Domains register their rules here with `@rule("domain.action")`; transport code calls
`require(principal, action, obj)`. The authorisation-matrix test enumerates `actions()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.core.errors import Forbidden
from server.core.principal import Principal

Rule = Callable[[Principal, Any], bool]

_RULES: dict[str, Rule] = {}


def rule(action: str) -> Callable[[Rule], Rule]:
    def register(check: Rule) -> Rule:
        if action in _RULES and _RULES[action] is not check:
            raise RuntimeError(f"policy rule {action!r} registered twice")
        _RULES[action] = check
        return check

    return register


def allowed(principal: Principal | None, action: str, obj: Any = None) -> bool:
    if principal is None:
        return False
    check = _RULES.get(action)
    if check is None:
        raise KeyError(f"no policy rule for {action!r}")  # a missing rule is a bug, never an allow
    return check(principal, obj)


def require(principal: Principal | None, action: str, obj: Any = None, *, detail: str | None = None) -> None:
    if not allowed(principal, action, obj):
        raise Forbidden(detail or "You do not have permission to do this.")


def actions() -> list[str]:
    return sorted(_RULES)


# --- rules every domain shares -----------------------------------------------------------------


@rule("directory.admin")
def _directory_admin(principal: Principal, _obj: Any) -> bool:
    return principal.has_role("directory_admin")


@rule("audit.read")
def _audit_read(principal: Principal, _obj: Any) -> bool:
    return principal.has_role("auditor")


@rule("unit.act_for")
def _act_for_unit(principal: Principal, unit_id: Any) -> bool:
    """Read a unit's inbox and act (send, acknowledge, claim) on its behalf."""
    return principal.is_member_of(unit_id)


@rule("unit.administer")
def _administer_unit(principal: Principal, unit_id: Any) -> bool:
    return principal.is_unit_admin_of(unit_id) or principal.has_role("directory_admin")


@rule("unit.manage_members")
def _manage_members(principal: Principal, unit_id: Any) -> bool:
    """Memberships give access to care information (PDL): unit administrators of the unit, not directory
    administrators as such (an organisation's explicit grant is checked in `service.may_manage_members`)."""
    return principal.is_unit_admin_of(unit_id)

"""Who is asking: the authenticated user behind a request or command."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.auth.roles import Role, roles_allowed


@dataclass(frozen=True)
class Principal:
    """An authenticated user (or service) and what its token grants."""

    user: str
    roles: frozenset[Role]
    team: str | None = None
    org: str | None = None
    name: str | None = None
    token_id: str | None = None
    # Job roles the sharing policy knows (``safeguarding_lead``): they refine what the
    # consent engine releases and grant no carebridge permission.
    care_roles: frozenset[str] = frozenset()

    @property
    def policy_roles(self) -> frozenset[str]:
        """Return the role names the consent engine is asked about."""
        return frozenset(r.value for r in self.roles) | self.care_roles

    def has(self, permission: str) -> bool:
        """Say whether any of the principal's roles is granted ``permission``."""
        return not self.roles.isdisjoint(roles_allowed(permission))

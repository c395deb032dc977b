"""Roles, the permissions table and principals."""

from __future__ import annotations

import pytest

from bridge.auth.principal import Principal
from bridge.auth.roles import PERMISSIONS, Role, parse_role, roles_allowed


class TestPermissionsTable:
    def test_metadata_is_open_to_every_role(self) -> None:
        assert PERMISSIONS["fhir.metadata"] == frozenset(Role)

    def test_raw_fhir_reads_exclude_social_workers(self) -> None:
        # Social workers reach health data only through the consent gate.
        assert PERMISSIONS["fhir.read"] == {Role.HEALTH_PROFESSIONAL, Role.IG_OFFICER, Role.ADMIN}

    def test_writes_are_for_admin_and_the_sync_service(self) -> None:
        assert PERMISSIONS["fhir.write"] == {Role.ADMIN, Role.SYNC_SERVICE}

    def test_every_permission_grants_only_known_roles(self) -> None:
        for permission, roles in PERMISSIONS.items():
            assert roles, f"{permission} grants nobody"
            assert all(isinstance(r, Role) for r in roles)

    def test_unknown_permission_is_an_error_not_a_denial(self) -> None:
        with pytest.raises(ValueError, match=r"unknown permission 'fhir\.raed'"):
            roles_allowed("fhir.raed")


class TestParseRole:
    def test_known_role(self) -> None:
        assert parse_role("ig_officer") is Role.IG_OFFICER

    def test_unknown_role_lists_the_known_ones(self) -> None:
        with pytest.raises(ValueError, match=r"unknown role 'nurse' \(known roles: social_worker"):
            parse_role("nurse")


class TestPrincipal:
    def test_has_permission_through_any_role(self) -> None:
        p = Principal("u1", frozenset({Role.SOCIAL_WORKER, Role.IG_OFFICER}))
        assert p.has("fhir.read")
        assert p.has("fhir.metadata")
        assert not p.has("fhir.write")

    def test_social_worker_alone_cannot_read_raw_fhir(self) -> None:
        assert not Principal("u1", frozenset({Role.SOCIAL_WORKER})).has("fhir.read")

    def test_no_roles_no_permissions(self) -> None:
        p = Principal("u1", frozenset())
        assert not any(p.has(permission) for permission in PERMISSIONS)

    def test_is_immutable(self) -> None:
        p = Principal("u1", frozenset({Role.ADMIN}))
        with pytest.raises(AttributeError):
            p.user = "u2"  # type: ignore[misc]

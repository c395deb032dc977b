"""Authentication and authorisation: roles, permissions, principals and bearer tokens.

Nothing here knows about FastAPI; the API and the CLI both use it.
"""

from bridge.auth.principal import Principal
from bridge.auth.roles import PERMISSIONS, Role, roles_allowed
from bridge.auth.tokens import TokenVerifier, dev_jwks, mint_dev_token

__all__ = [
    "PERMISSIONS",
    "Principal",
    "Role",
    "TokenVerifier",
    "dev_jwks",
    "mint_dev_token",
    "roles_allowed",
]

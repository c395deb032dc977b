"""Bearer tokens: the development issuer and the verifier every request goes through.

The verifier trusts keys from a JWKS file, a JWKS URL (fetched and cached), or - only in
development mode with the development issuer enabled - the development signing key, an
ES256 key pair kept at ``settings.dev_signing_key_file`` and created on first use.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt import PyJWK, PyJWKClient, PyJWKSet

from bridge.auth.principal import Principal
from bridge.auth.roles import Role, parse_role
from bridge.core.errors import AuthenticationError, ConfigurationError, ValidationError
from bridge.core.files import create_private
from bridge.core.settings import Settings

log = logging.getLogger("carebridge.auth")

DEV_ALGORITHM = "ES256"
# Asymmetric algorithms only: "none" and the HMAC family (HS*) are never accepted, so a
# public key can never be misused as a shared secret.
ALLOWED_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "PS256")
_KEY_TYPE_FOR = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC"}
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS: tuple[str, ...] = ("iss", "aud", "sub", "exp", "iat")
MAX_TOKEN_CHARS = 16_384
_KEY_TYPES = frozenset({"RSA", "EC"})


# -- the development issuer ---------------------------------------------------------------


def _require_dev_issuer(settings: Settings) -> None:
    if settings.is_production:
        raise ConfigurationError(
            "the development token issuer is never available in production mode; tokens must"
            " come from your identity provider (CAREBRIDGE_JWT_ISSUER, CAREBRIDGE_JWKS_FILE"
            " or CAREBRIDGE_JWKS_URL)"
        )
    if not settings.dev_issuer_enabled:
        raise ConfigurationError(
            "the development token issuer is disabled; set CAREBRIDGE_DEV_ISSUER_ENABLED=true"
            " (development mode only) to mint development tokens"
        )


def _load_dev_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """Load the development signing key, creating it on first use."""
    _require_dev_issuer(settings)
    path = settings.dev_signing_key_file
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if create_private(path, pem):
            log.info("created development token signing key", extra={"fields": {"path": str(path)}})
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"development signing key {path} is not a readable PEM private key; delete it to"
            " have a new one made"
        ) from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
        raise ConfigurationError(f"development signing key {path} is not a P-256 (ES256) key")
    return loaded


def _b64url_uint(value: int, size: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode()


def _public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """Return the public JWK of a P-256 key with its RFC 7638 thumbprint as ``kid``."""
    numbers = key.public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url_uint(numbers.x, 32),
        "y": _b64url_uint(numbers.y, 32),
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return members | {"kid": kid, "use": "sig", "alg": DEV_ALGORITHM}


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """Return the development public key as a JWKS document (for a JWKS file)."""
    return {"keys": [_public_jwk(_load_dev_key(settings).public_key())]}


def mint_dev_token(
    settings: Settings,
    *,
    user: str,
    roles: Iterable[Role | str],
    team: str | None = None,
    org: str | None = None,
    name: str | None = None,
    ttl_minutes: int | None = None,
    now: datetime | None = None,
    care_roles: Iterable[str] = (),
) -> str:
    """Mint a development bearer token signed with the development key."""
    key = _load_dev_key(settings)
    if not user or not user.strip():
        raise ValidationError("a token needs a user (the `sub` claim)", field="user")
    try:
        parsed = sorted({parse_role(str(r)) for r in roles})
    except ValueError as exc:
        raise ValidationError(str(exc), field="roles") from None
    if not parsed:
        raise ValidationError("a token needs at least one role", field="roles")
    ttl = settings.dev_token_ttl_minutes if ttl_minutes is None else ttl_minutes
    if ttl < 1:
        raise ValidationError("a token must live at least one minute", field="ttl_minutes")
    issued = (now or datetime.now(UTC)).astimezone(UTC)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user.strip(),
        "roles": [r.value for r in parsed],
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + timedelta(minutes=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    for claim, value in (("team", team), ("org", org), ("name", name)):
        if value is not None:
            claims[claim] = value
    care = sorted({str(r).strip() for r in care_roles})
    for value in care:
        if not _CARE_ROLE.fullmatch(value):
            raise ValidationError(
                f"care role {value!r} must be a policy role name (a-z, 0-9, _)",
                field="care_roles",
            )
    if care:
        claims["care_roles"] = care
    kid = _public_jwk(key.public_key())["kid"]
    return jwt.encode(claims, key, algorithm=DEV_ALGORITHM, headers={"kid": kid})


# -- verification -------------------------------------------------------------------------


def _usable_keys(jwks: dict[str, Any], origin: str) -> list[PyJWK]:
    """Return the asymmetric signing keys of a JWKS document."""
    raw = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(raw, list):
        raise ConfigurationError(f"{origin} is not a JWKS document (no 'keys' list)")
    wanted = [
        k
        for k in raw
        if isinstance(k, dict) and k.get("kty") in _KEY_TYPES and k.get("use", "sig") == "sig"
    ]
    if not wanted:
        raise ConfigurationError(f"{origin} holds no RSA or EC signing keys")
    try:
        return list(PyJWKSet(wanted))
    except jwt.PyJWTError as exc:
        raise ConfigurationError(f"{origin} holds no usable keys: {exc}") from exc


def _load_jwks_file(path: Path) -> list[PyJWK]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigurationError(
            f"JWKS file {path} does not exist (CAREBRIDGE_JWKS_FILE)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"JWKS file {path} is not readable JSON: {exc}") from exc
    return _usable_keys(data, f"JWKS file {path}")


_CLAIM_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token is not valid yet"),
    (jwt.InvalidIssuerError, "token issuer is not trusted"),
    (jwt.InvalidAudienceError, "token audience is not this service"),
    (jwt.InvalidSignatureError, "token signature is not valid"),
    (jwt.InvalidIssuedAtError, "token issue time is not valid"),
    (jwt.InvalidAlgorithmError, "token algorithm is not allowed"),
    (jwt.InvalidKeyError, "token algorithm does not match its signing key"),
    (jwt.DecodeError, "token is not a well-formed JWT"),
)


class TokenVerifier:
    """Check bearer tokens and turn them into principals."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: Sequence[PyJWK] = (),
        jwks_client: PyJWKClient | None = None,
        leeway: float = LEEWAY_SECONDS,
    ) -> None:
        if not keys and jwks_client is None:
            raise ConfigurationError(
                "no token signing keys are configured: set CAREBRIDGE_JWKS_FILE or"
                " CAREBRIDGE_JWKS_URL, or enable the development issuer"
                " (CAREBRIDGE_DEV_ISSUER_ENABLED=true, development mode only)"
            )
        self.issuer = issuer
        self.audience = audience
        self.keys = list(keys)
        self.jwks_client = jwks_client
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """Build the verifier the settings describe (creating the dev key when it is used)."""
        keys: list[PyJWK] = []
        if settings.jwks_file is not None:
            keys.extend(_load_jwks_file(settings.jwks_file))
        if settings.dev_issuer_enabled and not settings.is_production:
            keys.extend(_usable_keys(dev_jwks(settings), "the development key"))
        client = None
        if settings.jwks_url:
            try:
                # The key set is cached for five minutes; an unknown kid forces one refetch
                # (at most every 30 s), so a key rotation at the identity provider is seen.
                client = PyJWKClient(settings.jwks_url, cache_jwk_set=True, lifespan=300, timeout=5)
            except jwt.PyJWKClientError as exc:
                raise ConfigurationError(f"CAREBRIDGE_JWKS_URL is not usable: {exc}") from exc
        return cls(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            keys=keys,
            jwks_client=client,
        )

    def verify(self, token: str) -> Principal:
        """Check a token's signature and claims; return its principal (else AuthenticationError)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationError("token is not a well-formed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError("token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            allowed = ", ".join(ALLOWED_ALGORITHMS)
            raise AuthenticationError(f"token algorithm is not allowed (allowed: {allowed})")
        key = self._signing_key(header.get("kid"))
        if key.key_type != _KEY_TYPE_FOR[alg]:
            raise AuthenticationError("token algorithm does not match its signing key")
        try:
            claims = jwt.decode(
                token,
                # The raw key, not the PyJWK (whose algorithm is guessed from its type when
                # the JWKS omits "alg"): the allow-list decides, the key type is checked above.
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"token is missing the '{exc.claim}' claim") from None
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        return _principal(claims)

    def _signing_key(self, kid: object) -> PyJWK:
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("token key id (kid) is not valid")
        if kid is None:
            # Without a kid only an unambiguous single configured key can be meant.
            if len(self.keys) == 1 and self.jwks_client is None:
                return self.keys[0]
            raise AuthenticationError("token has no key id (kid)")
        for key in self.keys:
            if key.key_id == kid:
                return key
        if self.jwks_client is not None:
            try:
                found = self.jwks_client.get_signing_key(kid)
            except jwt.PyJWKClientConnectionError as exc:
                log.warning(
                    "could not fetch the identity provider's JWKS",
                    extra={"fields": {"error": str(exc)}},
                )
                raise AuthenticationError(
                    "the identity provider's signing keys could not be fetched; try again"
                ) from None
            except jwt.PyJWTError:
                raise AuthenticationError("token signing key is not trusted") from None
            if found.key_type in _KEY_TYPES:
                return found
        raise AuthenticationError("token signing key is not trusted")


def _reason(exc: Exception) -> str:
    for cls, reason in _CLAIM_ERRORS:
        if isinstance(exc, cls):
            return reason
    return "token is not valid"


def _optional_str(claims: dict[str, Any], claim: str) -> str | None:
    value = claims.get(claim)
    if value is None:
        return None
    if not isinstance(value, str):
        raise AuthenticationError(f"token claim '{claim}' must be a string")
    return value


_CARE_ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _care_roles(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("care_roles")
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not all(
        isinstance(r, str) and _CARE_ROLE.fullmatch(r) for r in raw
    ):
        raise AuthenticationError(
            "token claim 'care_roles' must be a list of policy role names (a-z, 0-9, _)"
        )
    return frozenset(raw)


def _principal(claims: dict[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise AuthenticationError("token subject (sub) is empty")
    raw_roles = claims.get("roles")
    if raw_roles is None:
        raise AuthenticationError("token is missing the 'roles' claim")
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise AuthenticationError("token claim 'roles' must be a list of role names")
    roles: set[Role] = set()
    unknown: list[str] = []
    for value in raw_roles:
        try:
            roles.add(Role(value))
        except ValueError:
            unknown.append(value[:64])
    if unknown:
        raise AuthenticationError(
            "token names roles carebridge does not know: " + ", ".join(sorted(unknown))
        )
    return Principal(
        user=sub,
        roles=frozenset(roles),
        team=_optional_str(claims, "team"),
        org=_optional_str(claims, "org"),
        name=_optional_str(claims, "name"),
        token_id=_optional_str(claims, "jti"),
        care_roles=_care_roles(claims),
    )

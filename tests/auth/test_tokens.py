"""The development issuer and the token verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from bridge.auth.roles import Role
from bridge.auth.tokens import TokenVerifier, dev_jwks, mint_dev_token
from bridge.core.errors import AuthenticationError, ConfigurationError, ValidationError
from bridge.core.settings import Settings

IDP = "https://idp.example.test/realms/care"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def _claims(settings: Settings, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "someone",
        "roles": ["admin"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _dev_kid(settings: Settings) -> str:
    return str(dev_jwks(settings)["keys"][0]["kid"])


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    """An RSA key standing in for an identity provider's."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verifier(settings: Settings) -> TokenVerifier:
    """The verifier for development settings (trusts the development key)."""
    return TokenVerifier.from_settings(settings)


def _denied(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token)
    assert caught.value.status == 401
    return caught.value.detail


class TestDevSigningKey:
    def test_created_on_first_use_owner_only(self, settings: Settings) -> None:
        path = settings.dev_signing_key_file
        assert not path.exists()
        dev_jwks(settings)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
        assert [p.name for p in path.parent.iterdir()] == [path.name], "temp file left behind"

    def test_reused_not_replaced(self, settings: Settings) -> None:
        first = dev_jwks(settings)
        before = settings.dev_signing_key_file.read_bytes()
        assert dev_jwks(settings) == first
        assert settings.dev_signing_key_file.read_bytes() == before

    def test_kid_is_the_rfc7638_thumbprint(self, settings: Settings) -> None:
        jwk = dev_jwks(settings)["keys"][0]
        members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        assert jwk["kid"] == _b64(hashlib.sha256(canonical).digest())
        assert jwk["alg"] == "ES256"
        assert "d" not in jwk, "the JWKS must not carry the private key"

    def test_refused_in_production(self, tmp_path: Path) -> None:
        prod = Settings(_env_file=None, data_dir=tmp_path, mode="production")  # type: ignore[call-arg]
        with pytest.raises(ConfigurationError, match="never available in production"):
            mint_dev_token(prod, user="u", roles=[Role.ADMIN])
        with pytest.raises(ConfigurationError):
            dev_jwks(prod)
        assert not prod.dev_signing_key_file.exists()

    def test_refused_when_disabled(self, tmp_path: Path) -> None:
        off = Settings(_env_file=None, data_dir=tmp_path, dev_issuer_enabled=False)  # type: ignore[call-arg]
        with pytest.raises(ConfigurationError, match="CAREBRIDGE_DEV_ISSUER_ENABLED=true"):
            mint_dev_token(off, user="u", roles=[Role.ADMIN])
        assert not off.dev_signing_key_file.exists()

    def test_unreadable_key_file_says_what_to_do(self, settings: Settings) -> None:
        path = settings.dev_signing_key_file
        path.parent.mkdir(parents=True)
        path.write_text("not a key")
        with pytest.raises(ConfigurationError, match="delete it to have a new one made"):
            dev_jwks(settings)


class TestMintDevToken:
    def test_claims_and_header(self, settings: Settings) -> None:
        at = datetime.now(UTC).replace(microsecond=0)
        token = mint_dev_token(
            settings,
            user="jo.bloggs",
            roles=["social_worker", Role.IG_OFFICER],
            team="reablement-north",
            org="RYX",
            name="Jo Bloggs",
            ttl_minutes=30,
            now=at,
        )
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "ES256"
        assert header["kid"] == _dev_kid(settings)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == settings.jwt_issuer
        assert claims["aud"] == settings.jwt_audience
        assert claims["sub"] == "jo.bloggs"
        assert claims["roles"] == ["ig_officer", "social_worker"]
        assert (claims["team"], claims["org"], claims["name"]) == (
            "reablement-north",
            "RYX",
            "Jo Bloggs",
        )
        assert claims["iat"] == claims["nbf"] == int(at.timestamp())
        assert claims["exp"] == int((at + timedelta(minutes=30)).timestamp())
        assert len(claims["jti"]) == 32

    def test_default_lifetime_from_settings(self, settings: Settings) -> None:
        claims = jwt.decode(
            mint_dev_token(settings, user="u", roles=[Role.ADMIN]),
            options={"verify_signature": False},
        )
        assert claims["exp"] - claims["iat"] == settings.dev_token_ttl_minutes * 60
        assert "team" not in claims
        assert "org" not in claims

    def test_each_token_has_its_own_id(self, settings: Settings) -> None:
        a = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        b = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        decode = lambda t: jwt.decode(t, options={"verify_signature": False})  # noqa: E731
        assert decode(a)["jti"] != decode(b)["jti"]

    def test_unknown_role_refused(self, settings: Settings) -> None:
        with pytest.raises(ValidationError, match="unknown role 'nurse'") as caught:
            mint_dev_token(settings, user="u", roles=["nurse"])
        assert caught.value.field == "roles"

    def test_no_role_refused(self, settings: Settings) -> None:
        with pytest.raises(ValidationError, match="at least one role"):
            mint_dev_token(settings, user="u", roles=[])

    def test_blank_user_refused(self, settings: Settings) -> None:
        with pytest.raises(ValidationError, match="needs a user") as caught:
            mint_dev_token(settings, user="  ", roles=[Role.ADMIN])
        assert caught.value.field == "user"


class TestVerifyAccepts:
    def test_dev_token_gives_its_principal(
        self, settings: Settings, verifier: TokenVerifier
    ) -> None:
        token = mint_dev_token(
            settings, user="jo", roles=[Role.SOCIAL_WORKER], team="t1", org="RYX", name="Jo"
        )
        p = verifier.verify(token)
        assert p.user == "jo"
        assert p.roles == {Role.SOCIAL_WORKER}
        assert (p.team, p.org, p.name) == ("t1", "RYX", "Jo")
        assert p.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]

    def test_small_clock_skew_is_tolerated(
        self, settings: Settings, verifier: TokenVerifier
    ) -> None:
        # Issued by a clock 10 s ahead of ours.
        ahead = datetime.now(UTC) + timedelta(seconds=10)
        assert (
            verifier.verify(mint_dev_token(settings, user="u", roles=[Role.ADMIN], now=ahead)).user
            == "u"
        )

    def test_jwks_file_with_dev_issuer_disabled(self, settings: Settings, tmp_path: Path) -> None:
        token = mint_dev_token(settings, user="u", roles=[Role.IG_OFFICER])
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps(dev_jwks(settings)))
        external = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "other",
            dev_issuer_enabled=False,
            jwks_file=jwks_file,
        )
        assert TokenVerifier.from_settings(external).verify(token).roles == {Role.IG_OFFICER}
        assert not external.dev_signing_key_file.exists()

    @pytest.mark.parametrize("alg", ["RS256", "PS256"])
    def test_rsa_identity_provider_keys(
        self, settings: Settings, tmp_path: Path, rsa_key: rsa.RSAPrivateKey, alg: str
    ) -> None:
        jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "idp-1"}
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [jwk]}))
        idp = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path,
            dev_issuer_enabled=False,
            jwks_file=jwks_file,
            jwt_issuer=IDP,
        )
        token = jwt.encode(_claims(idp), rsa_key, algorithm=alg, headers={"kid": "idp-1"})
        assert TokenVerifier.from_settings(idp).verify(token).user == "someone"

    def test_jwks_url_is_fetched_once_and_cached(self, settings: Settings, tmp_path: Path) -> None:
        document = json.dumps(dev_jwks(settings)).encode()
        fetches: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fetches.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: Any) -> None:
                pass

        with _serving(Handler) as port:
            remote = Settings(  # type: ignore[call-arg]
                _env_file=None,
                data_dir=tmp_path / "remote",
                dev_issuer_enabled=False,
                jwks_url=f"http://127.0.0.1:{port}/jwks.json",
            )
            v = TokenVerifier.from_settings(remote)
            for user in ("a", "b"):
                token = mint_dev_token(settings, user=user, roles=[Role.ADMIN])
                assert v.verify(token).user == user
        assert fetches == ["/jwks.json"]

    def test_unreachable_jwks_url_is_a_clear_401(self, settings: Settings, tmp_path: Path) -> None:
        remote = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "remote",
            dev_issuer_enabled=False,
            jwks_url="http://127.0.0.1:9/jwks.json",
        )
        token = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        detail = _denied(TokenVerifier.from_settings(remote), token)
        assert detail == "the identity provider's signing keys could not be fetched; try again"


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """Serve ``handler`` on a free local port; yield the port."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class TestVerifyRefuses:
    def test_wrong_signature(self, settings: Settings, verifier: TokenVerifier) -> None:
        # Signed by another key but claiming the trusted key's id.
        other = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(
            _claims(settings), other, algorithm="ES256", headers={"kid": _dev_kid(settings)}
        )
        assert _denied(verifier, token) == "token signature is not valid"

    def test_unknown_signing_key(self, settings: Settings, verifier: TokenVerifier) -> None:
        other = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(_claims(settings), other, algorithm="ES256", headers={"kid": "x"})
        assert _denied(verifier, token) == "token signing key is not trusted"

    def test_tampered_claims(self, settings: Settings, verifier: TokenVerifier) -> None:
        token = mint_dev_token(settings, user="u", roles=[Role.SOCIAL_WORKER])
        head, _, rest = token.partition(".")
        _, _, signature = rest.partition(".")
        forged = _claims(settings, roles=["admin"])
        tampered = f"{head}.{_b64(json.dumps(forged).encode())}.{signature}"
        assert _denied(verifier, tampered) == "token signature is not valid"

    def test_expired(self, settings: Settings, verifier: TokenVerifier) -> None:
        token = mint_dev_token(
            settings,
            user="u",
            roles=[Role.ADMIN],
            ttl_minutes=60,
            now=datetime.now(UTC) - timedelta(hours=2),
        )
        assert _denied(verifier, token) == "token expired"

    def test_not_yet_valid(self, settings: Settings, verifier: TokenVerifier) -> None:
        token = mint_dev_token(
            settings, user="u", roles=[Role.ADMIN], now=datetime.now(UTC) + timedelta(hours=1)
        )
        assert _denied(verifier, token) == "token is not valid yet"

    def test_wrong_issuer(self, settings: Settings, tmp_path: Path) -> None:
        token = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        strict = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=settings.data_dir, jwt_issuer=IDP
        )
        assert _denied(TokenVerifier.from_settings(strict), token) == "token issuer is not trusted"

    def test_wrong_audience(self, settings: Settings) -> None:
        token = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        other = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=settings.data_dir, jwt_audience="another-service"
        )
        detail = _denied(TokenVerifier.from_settings(other), token)
        assert detail == "token audience is not this service"

    def test_alg_none(self, settings: Settings, verifier: TokenVerifier) -> None:
        token = _unsigned({"alg": "none", "typ": "JWT"}, _claims(settings)) + "."
        assert _denied(verifier, token).startswith("token algorithm is not allowed")

    def test_hmac_with_the_public_key_as_secret(
        self, settings: Settings, verifier: TokenVerifier
    ) -> None:
        # The classic key-confusion attack: HS256 "signed" with the published public key.
        secret = json.dumps(dev_jwks(settings)).encode()
        signing_input = _unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": _dev_kid(settings)}, _claims(settings)
        )
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert _denied(verifier, f"{signing_input}.{_b64(mac)}").startswith(
            "token algorithm is not allowed"
        )

    def test_algorithm_not_matching_the_key(
        self, settings: Settings, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
    ) -> None:
        # An ES256 token naming an RSA key: refused whatever the signature.
        jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True) | {"kid": "idp-1"}
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [jwk]}))
        idp = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path, dev_issuer_enabled=False, jwks_file=jwks_file
        )
        other = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(_claims(idp), other, algorithm="ES256", headers={"kid": "idp-1"})
        detail = _denied(TokenVerifier.from_settings(idp), token)
        assert detail == "token algorithm does not match its signing key"

    @pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "", "x" * 20_000, "...."])
    def test_garbage(self, verifier: TokenVerifier, garbage: str) -> None:
        assert _denied(verifier, garbage) == "token is not a well-formed JWT"

    def test_unknown_role(self, settings: Settings, verifier: TokenVerifier) -> None:
        key = serialization.load_pem_private_key(
            settings.dev_signing_key_file.read_bytes(), password=None
        )
        token = jwt.encode(
            _claims(settings, roles=["admin", "superuser"]),
            key,  # type: ignore[arg-type]
            algorithm="ES256",
            headers={"kid": _dev_kid(settings)},
        )
        assert _denied(verifier, token) == "token names roles carebridge does not know: superuser"

    @pytest.mark.parametrize(
        ("overrides", "detail"),
        [
            ({"sub": None}, "token is missing the 'sub' claim"),
            ({"exp": None}, "token is missing the 'exp' claim"),
            ({"aud": None}, "token is missing the 'aud' claim"),
            ({"roles": None}, "token is missing the 'roles' claim"),
            ({"roles": "admin"}, "token claim 'roles' must be a list of role names"),
            ({"team": 7}, "token claim 'team' must be a string"),
            ({"sub": " "}, "token subject (sub) is empty"),
        ],
    )
    def test_bad_claims(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        overrides: dict[str, Any],
        detail: str,
    ) -> None:
        key = serialization.load_pem_private_key(
            settings.dev_signing_key_file.read_bytes(), password=None
        )
        token = jwt.encode(
            _claims(settings, **overrides),
            key,  # type: ignore[arg-type]
            algorithm="ES256",
            headers={"kid": _dev_kid(settings)},
        )
        assert _denied(verifier, token) == detail


class TestVerifierConfiguration:
    def test_no_keys_at_all_is_a_configuration_error(self, tmp_path: Path) -> None:
        bare = Settings(_env_file=None, data_dir=tmp_path, dev_issuer_enabled=False)  # type: ignore[call-arg]
        with pytest.raises(ConfigurationError, match="CAREBRIDGE_JWKS_FILE or CAREBRIDGE_JWKS_URL"):
            TokenVerifier.from_settings(bare)

    def test_missing_jwks_file(self, tmp_path: Path) -> None:
        s = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path,
            dev_issuer_enabled=False,
            jwks_file=tmp_path / "nope.json",
        )
        with pytest.raises(ConfigurationError, match=r"nope.json does not exist"):
            TokenVerifier.from_settings(s)

    def test_jwks_with_only_symmetric_keys_is_refused(self, tmp_path: Path) -> None:
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
        s = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path, dev_issuer_enabled=False, jwks_file=jwks_file
        )
        with pytest.raises(ConfigurationError, match="no RSA or EC signing keys"):
            TokenVerifier.from_settings(s)

    def test_production_never_trusts_the_dev_key(self, settings: Settings, tmp_path: Path) -> None:
        # Even if the dev issuer flag were left on, production mode ignores the dev key.
        dev_token = mint_dev_token(settings, user="u", roles=[Role.ADMIN])
        other = ec.generate_private_key(ec.SECP256R1()).public_key()
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(other)) | {"kid": "idp"}
        jwks_file = tmp_path / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [jwk]}))
        prod = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=settings.data_dir, mode="production", jwks_file=jwks_file
        )
        assert _denied(TokenVerifier.from_settings(prod), dev_token) == (
            "token signing key is not trusted"
        )

"""Signing keys, JWKS and metadata, client registration, client credentials, introspection, revocation."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import httpx
import jwt
import pytest

from media_gateway.auth.app import create_app
from media_gateway.auth.bootstrap import SERVICES_CLIENT_SECRET_FILE
from media_gateway.core.security.tokens import InvalidTokenError, TokenVerifier
from media_gateway.core.settings import Settings
from tests.auth.conftest import ADMIN_TOKEN, AuthApi, auth_test_settings
from tests.support import free_port, serving

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _verifier(api: AuthApi, http: httpx.AsyncClient) -> TokenVerifier:
    # What any other service builds: the JWKS fetched over HTTP from the auth service (without the
    # refetch throttle, so a rotation is seen at once).
    auth = api.settings.auth.model_copy(update={"jwks_refetch_min_interval_sec": 0.0})
    return TokenVerifier.from_settings(api.settings.model_copy(update={"auth": auth}), http)


async def _service_client(api: AuthApi, scopes: list[str]) -> dict[str, str]:
    return await api.new_client(
        name="Worker", redirect_uris=[], grant_types=["client_credentials"], scopes=scopes, confidential=True
    )


async def test_metadata_documents_point_at_the_endpoints(auth_api: AuthApi) -> None:
    issuer = auth_api.settings.token_issuer
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        r = await auth_api.http.get(path)
        assert r.status_code == 200
        meta = r.json()
        assert meta["issuer"] == issuer
        assert meta["token_endpoint"] == f"{issuer}/auth/token"
        assert meta["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert "urn:ietf:params:oauth:grant-type:device_code" in meta["grant_types_supported"]
    r = await auth_api.http.get("/.well-known/jwks.json")
    keys = r.json()["keys"]
    assert keys
    assert all("d" not in key and key["kid"] and key["alg"] in ("RS256", "EdDSA") for key in keys)


async def test_client_credentials_token_verifies_in_another_service(auth_api: AuthApi) -> None:
    client = await _service_client(auth_api, ["admin", "catalog:write"])
    r = await auth_api.token(
        {"grant_type": "client_credentials", "scope": "catalog:write"},
        auth=(client["client_id"], client["client_secret"]),
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "catalog:write"
    assert "refresh_token" not in body
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["kid"]
    async with httpx.AsyncClient() as http:
        principal = await _verifier(auth_api, http).verify(body["access_token"])
    assert principal.subject == client["client_id"]
    assert principal.user_id is None
    assert principal.scopes == {"catalog:write"}
    claims = principal.claims
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["token_use"] == "client"
    assert claims["aud"] == auth_api.settings.auth.audience


async def test_client_credentials_by_post_and_scope_limits(auth_api: AuthApi) -> None:
    client = await _service_client(auth_api, ["internal"])
    creds = {"client_id": client["client_id"], "client_secret": client["client_secret"]}
    r = await auth_api.token({"grant_type": "client_credentials", **creds})
    assert r.status_code == 200
    assert r.json()["scope"] == "internal"
    r = await auth_api.token({"grant_type": "client_credentials", "scope": "admin", **creds})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


@pytest.mark.parametrize(
    ("auth", "form"),
    [
        (("CLIENT", "wrong-secret"), {}),
        (None, {"client_id": "CLIENT"}),
        (("no-such-client", "x"), {}),
        (None, {}),
    ],
)
async def test_bad_client_authentication_is_401_invalid_client(
    auth_api: AuthApi, auth: tuple[str, str] | None, form: dict[str, str]
) -> None:
    client = await _service_client(auth_api, ["internal"])
    if auth and auth[0] == "CLIENT":
        auth = (client["client_id"], auth[1])
    form = {k: client["client_id"] if v == "CLIENT" else v for k, v in form.items()}
    r = await auth_api.token({"grant_type": "client_credentials", **form}, auth=auth)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert r.headers["cache-control"] == "no-store"


async def test_unknown_and_missing_grant_types(auth_api: AuthApi) -> None:
    r = await auth_api.token({"grant_type": "password", "username": "a", "password": "b"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    r = await auth_api.token({})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    r = await auth_api.http.post("/auth/token", content=b'{"grant_type":"client_credentials"}')
    assert r.json()["error"] == "invalid_request"


async def test_grant_not_registered_for_the_client_is_unauthorized_client(auth_api: AuthApi) -> None:
    client = await auth_api.new_client(grant_types=["authorization_code", "refresh_token"], confidential=True)
    r = await auth_api.token(
        {"grant_type": "client_credentials"}, auth=(client["client_id"], client["client_secret"])
    )
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"


async def test_introspection_and_revocation_of_an_access_token(auth_api: AuthApi) -> None:
    client = await _service_client(auth_api, ["internal"])
    creds = (client["client_id"], client["client_secret"])
    token = (await auth_api.token({"grant_type": "client_credentials"}, auth=creds)).json()["access_token"]
    r = await auth_api.http.post("/auth/introspect", data={"token": token}, auth=creds)
    assert r.status_code == 200
    info = r.json()
    assert info["active"] is True
    assert info["client_id"] == client["client_id"]
    assert info["scope"] == "internal"
    r = await auth_api.http.post(
        "/auth/revoke", data={"token": token, "token_type_hint": "access_token"}, auth=creds
    )
    assert r.status_code == 200
    r = await auth_api.http.post("/auth/introspect", data={"token": token}, auth=creds)
    assert r.json() == {"active": False}
    r = await auth_api.http.post("/auth/introspect", data={"token": "garbage"}, auth=creds)
    assert r.json() == {"active": False}
    # RFC 7009 §2.2: an unknown token is not an error.
    r = await auth_api.http.post("/auth/revoke", data={"token": "garbage"}, auth=creds)
    assert r.status_code == 200


async def test_introspection_needs_an_authenticated_confidential_client(auth_api: AuthApi) -> None:
    _, tokens = await auth_api.new_user()
    r = await auth_api.http.post("/auth/introspect", data={"token": tokens["access_token"]})
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    public = auth_api.settings.auth.first_party_client_id
    r = await auth_api.http.post(
        "/auth/introspect", data={"token": tokens["access_token"], "client_id": public}
    )
    assert r.status_code == 401


async def test_admin_endpoints_need_the_admin_token_or_an_admin_client(auth_api: AuthApi) -> None:
    body = {"name": "x", "redirect_uris": ["https://x.example/cb"]}
    r = await auth_api.http.post("/api/v1/admin/clients", json=body)
    assert r.status_code == 401
    _, tokens = await auth_api.new_user()
    r = await auth_api.http.post(
        "/api/v1/admin/clients", json=body, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert r.status_code == 403
    worker = await _service_client(auth_api, ["admin"])
    token = (
        await auth_api.token(
            {"grant_type": "client_credentials"}, auth=(worker["client_id"], worker["client_secret"])
        )
    ).json()["access_token"]
    r = await auth_api.http.post(
        "/api/v1/admin/clients", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 201
    assert r.json()["client_secret"]
    r = await auth_api.http.get("/api/v1/admin/clients", headers=ADMIN)
    assert all("client_secret" not in c or c["client_secret"] is None for c in r.json())


async def test_client_registration_rejects_open_redirect_uris(auth_api: AuthApi) -> None:
    for uri in ("http://evil.example/cb", "https://x.example/cb#frag", "javascript:alert(1)", "/relative"):
        r = await auth_api.http.post(
            "/api/v1/admin/clients", json={"name": "x", "redirect_uris": [uri]}, headers=ADMIN
        )
        assert r.status_code == 400, uri


async def test_services_client_is_bootstrapped_with_a_private_secret(auth_api: AuthApi) -> None:
    path = Path(auth_api.settings.data_dir) / SERVICES_CLIENT_SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    creds = (auth_api.settings.auth.services_client_id, path.read_text().strip())
    r = await auth_api.token({"grant_type": "client_credentials", "scope": "admin"}, auth=creds)
    assert r.status_code == 200, r.text
    r = await auth_api.http.get(
        "/api/v1/admin/clients", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
    )
    assert r.status_code == 200


async def test_key_rotation_publishes_old_and_new_keys(auth_api: AuthApi) -> None:
    client = await _service_client(auth_api, ["internal"])
    creds = (client["client_id"], client["client_secret"])
    old_token = (await auth_api.token({"grant_type": "client_credentials"}, auth=creds)).json()[
        "access_token"
    ]
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    async with httpx.AsyncClient() as http:
        verifier = _verifier(auth_api, http)
        await verifier.verify(old_token)  # warms the JWKS cache with the old key only
        r = await auth_api.http.post("/api/v1/admin/keys/rotate", headers=ADMIN)
        assert r.status_code == 200
        rotation = r.json()
        assert rotation["current_kid"] != old_kid
        assert old_kid in rotation["published_kids"]
        kids = [k["kid"] for k in (await auth_api.http.get("/.well-known/jwks.json")).json()["keys"]]
        assert rotation["current_kid"] in kids
        assert old_kid in kids
        new_token = (await auth_api.token({"grant_type": "client_credentials"}, auth=creds)).json()[
            "access_token"
        ]
        assert jwt.get_unverified_header(new_token)["kid"] == rotation["current_kid"]
        # The verifier meets an unknown kid and refetches; the old token keeps working in the overlap.
        assert (await verifier.verify(new_token)).subject == client["client_id"]
        assert (await verifier.verify(old_token)).subject == client["client_id"]


async def test_forged_tokens_are_rejected(auth_api: AuthApi) -> None:
    client = await _service_client(auth_api, ["internal"])
    creds = (client["client_id"], client["client_secret"])
    token = (await auth_api.token({"grant_type": "client_credentials"}, auth=creds)).json()["access_token"]
    header_b64, payload_b64, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    jwk = (await auth_api.http.get("/.well-known/jwks.json")).json()["keys"][0]
    none_token = jwt.encode(claims, key=None, algorithm="none", headers={"kid": jwk["kid"]})
    public_pem = jwt.PyJWK(jwk).key.public_bytes(  # type: ignore[union-attr]
        encoding=__import__("cryptography.hazmat.primitives.serialization", fromlist=["x"]).Encoding.PEM,
        format=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).PublicFormat.SubjectPublicKeyInfo,
    )
    hs_header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": jwk["kid"]}).encode()).rstrip(
        b"="
    )
    signing_input = hs_header + b"." + payload_b64.encode()
    import hashlib
    import hmac

    sig = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    hs_token = (signing_input + b"." + sig).decode()
    async with httpx.AsyncClient() as http:
        verifier = _verifier(auth_api, http)
        for forged in (none_token, hs_token):
            with pytest.raises(InvalidTokenError):
                await verifier.verify(forged)
    for forged in (none_token, hs_token):
        r = await auth_api.http.post("/auth/introspect", data={"token": forged}, auth=creds)
        assert r.json() == {"active": False}
    assert header_b64


async def test_private_keys_are_sealed_at_rest(auth_api: AuthApi) -> None:
    import asyncpg

    dsn = str(auth_api.settings.database_url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT kid, private_jwk FROM auth.signing_keys")
    finally:
        await conn.close()
    assert rows
    for row in rows:
        assert row["private_jwk"].startswith("v1.")
        assert '"d"' not in row["private_jwk"]


async def test_eddsa_signing(scratch_settings: Settings) -> None:
    port = free_port()
    settings = auth_test_settings(scratch_settings, port, signing_algorithm="EdDSA")
    app = create_app(settings)
    async with serving(app, port=port) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        api = AuthApi(base_url=base_url, settings=settings, http=http)
        _, tokens = await api.new_user()
        assert jwt.get_unverified_header(tokens["access_token"])["alg"] == "EdDSA"
        jwks = (await http.get("/.well-known/jwks.json")).json()
        assert jwks["keys"][0]["kty"] == "OKP"
        principal = await _verifier(api, http).verify(tokens["access_token"])
        assert principal.user_id is not None

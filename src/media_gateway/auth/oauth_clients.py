"""Registered OAuth clients: creation, and client authentication (client_secret_basic / _post)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection

from media_gateway.auth import repository
from media_gateway.auth.errors import OAuthError, invalid_client
from media_gateway.auth.repository import ClientRow

GRANT_AUTHORIZATION_CODE = "authorization_code"
GRANT_REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type name
GRANT_CLIENT_CREDENTIALS = "client_credentials"
GRANT_DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
GRANT_TYPES = (GRANT_AUTHORIZATION_CODE, GRANT_REFRESH_TOKEN, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE_CODE)

# Scopes a user-facing grant never carries: only a confidential client acting for itself has them.
SERVICE_ONLY_SCOPES = frozenset({"admin"})
USER_SCOPES = ("openid", "profile", "email", "offline_access")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token
_CLIENT_ID = re.compile(r"^[A-Za-z0-9._~-]{3,100}$")


def secret_hash(secret: str) -> str:
    # Client secrets are 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def valid_redirect_uri(uri: str) -> bool:
    """Absolute, no fragment; https, or http only on loopback, or a private-use scheme (RFC 8252)."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri:
        return False
    if parts.scheme == "https":
        return bool(parts.netloc)
    if parts.scheme == "http":
        return parts.hostname in ("127.0.0.1", "localhost", "::1")
    # Private-use URI schemes contain a period (RFC 8252 §7.1), e.g. com.example.app:/callback.
    return "." in parts.scheme


@dataclass(frozen=True)
class NewClient:
    client: ClientRow
    secret: str | None


async def create_client(
    conn: AsyncConnection,
    *,
    name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scopes: list[str],
    confidential: bool,
    client_id: str | None = None,
    self_registered: bool = False,
) -> NewClient:
    for uri in redirect_uris:
        if not valid_redirect_uri(uri):
            raise ValueError(f"invalid redirect_uri: {uri}")
    for grant in grant_types:
        if grant not in GRANT_TYPES:
            raise ValueError(f"unknown grant type: {grant}")
    for scope in scopes:
        if not _SCOPE_TOKEN.match(scope):
            raise ValueError(f"invalid scope: {scope}")
    if GRANT_CLIENT_CREDENTIALS in grant_types and not confidential:
        raise ValueError("client_credentials needs a confidential client")
    if GRANT_AUTHORIZATION_CODE in grant_types and not redirect_uris:
        raise ValueError("authorization_code needs at least one redirect_uri")
    if client_id is not None and not _CLIENT_ID.match(client_id):
        raise ValueError("client_id must be 3-100 characters of A-Z a-z 0-9 . _ ~ -")
    secret = new_client_secret() if confidential else None
    client = ClientRow(
        client_id=client_id or secrets.token_urlsafe(16),
        secret_hash=secret_hash(secret) if secret else None,
        name=name,
        redirect_uris=redirect_uris,
        grant_types=grant_types,
        scopes=scopes,
        self_registered=self_registered,
    )
    if not await repository.insert_client(conn, client):
        raise ValueError(f"client_id {client.client_id} is taken")
    return NewClient(client=client, secret=secret)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client("malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


ClientLookup = Callable[[str], Awaitable[ClientRow | None]]


async def authenticate_client(
    lookup: ClientLookup, authorization: str | None, form: Mapping[str, str]
) -> ClientRow:
    """The calling client, authenticated; a public client identifies itself with client_id only."""
    basic = _basic_credentials(authorization)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None:
        if form_secret is not None:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        if form_id is not None and form_id != basic[0]:
            raise invalid_client("client_id does not match the credentials")
        client_id, secret = basic
    elif form_id:
        client_id, secret = form_id, form_secret  # type: ignore[assignment]
    else:
        raise invalid_client("client authentication is required")
    client = await lookup(client_id)
    if client is None:
        # Same work as a known client, so timing does not reveal which ids exist.
        hmac.compare_digest(secret_hash(secret or ""), secret_hash(""))
        raise invalid_client()
    if client.secret_hash is None:
        if secret:
            raise invalid_client("a public client has no secret")
        return client
    if not secret or not hmac.compare_digest(secret_hash(secret), client.secret_hash):
        raise invalid_client()
    return client


def resolve_scope(client: ClientRow, requested: str | None, *, for_user: bool) -> str:
    """The granted scope: the requested one if the client may have it, else invalid_scope."""
    allowed = [s for s in client.scopes if not (for_user and s in SERVICE_ONLY_SCOPES)]
    if requested is None or not requested.strip():
        return " ".join(allowed)
    wanted = requested.split()
    if any(not _SCOPE_TOKEN.match(s) for s in wanted):
        raise OAuthError("invalid_scope", "malformed scope")
    unknown = [s for s in wanted if s not in allowed]
    if unknown:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(unknown)}")
    return " ".join(dict.fromkeys(wanted))

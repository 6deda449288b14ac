"""Google's side of sign-in: the authorization URL, the code exchange (Authlib's httpx client, PKCE
S256, client_secret_post), ID-token validation against Google's cached JWKS, and the profile from
userinfo."""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from typing import Any

import httpx
import httpx2
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from media_gateway.auth.google.schemas import GoogleIdentity
from media_gateway.core.security.tokens import JwksCache
from media_gateway.core.settings import Settings

logger = logging.getLogger(__name__)

SCOPE = "openid email profile"
CALLBACK_PATH = "/auth/oauth/google/callback"
# Google rotates its keys about weekly and publishes them hours ahead; a new kid refetches early.
JWKS_TTL_SEC = 3600.0
# Google documents both spellings of its issuer.
_GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


class GoogleRejected(Exception):
    """Google answered the code exchange with an OAuth error (a used or forged code, ...)."""


class GoogleUnavailable(Exception):
    """Google could not be reached or answered something that is not OAuth."""


class InvalidIdToken(Exception):
    """The ID token failed validation: signature, issuer, audience, expiry or nonce."""


def _email_verified(value: object) -> bool:
    # Google sends a boolean; some older responses sent the string "true".
    return value is True or value == "true"


class GoogleOAuth:
    def __init__(self, settings: Settings) -> None:
        auth = settings.auth
        self.client_id = auth.google_client_id
        self._client_secret = auth.google_client_secret.get_secret_value()
        self.authorize_url = auth.google_authorize_url
        self.token_url = auth.google_token_url
        self.userinfo_url = auth.google_userinfo_url
        self.jwks_url = auth.google_jwks_url
        self.redirect_uri = auth.google_redirect_uri or f"{settings.token_issuer}{CALLBACK_PATH}"
        issuer = auth.google_issuer.rstrip("/")
        self.issuers = list(_GOOGLE_ISSUERS) if issuer in _GOOGLE_ISSUERS else [issuer]
        self._leeway = auth.leeway_sec
        self._timeout = auth.google_timeout_sec
        self._jwks = JwksCache(
            self._fetch_jwks,
            ttl_sec=JWKS_TTL_SEC,
            refetch_min_interval_sec=auth.jwks_refetch_min_interval_sec,
        )
        self._ssl: ssl.SSLContext | None = None

    async def _ssl_context(self) -> ssl.SSLContext:
        # Loading the trust store takes ~0.2 s of CPU: once, and off the event loop.
        if self._ssl is None:
            self._ssl = await asyncio.to_thread(httpx2.create_ssl_context)
        return self._ssl

    async def _client(self) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
            scope=SCOPE,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
            verify=await self._ssl_context(),
        )

    def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        url: str = prepare_grant_uri(
            self.authorize_url,
            client_id=self.client_id,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=SCOPE,
            state=state,
            code_challenge=create_s256_code_challenge(code_verifier),
            code_challenge_method="S256",
            nonce=nonce,
        )
        return url

    async def sign_in(self, *, code: str, code_verifier: str, nonce: str) -> GoogleIdentity:
        """Exchanges the code, validates the ID token, and adds the userinfo profile if it answers."""
        async with await self._client() as client:
            try:
                token = await client.fetch_token(
                    self.token_url, grant_type="authorization_code", code=code, code_verifier=code_verifier
                )
            except OAuthError as exc:
                raise GoogleRejected(exc.error or "error") from exc
            except (httpx2.HTTPError, ValueError) as exc:
                raise GoogleUnavailable(f"token endpoint: {type(exc).__name__}") from exc
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise GoogleUnavailable("the token response has no id_token")
            identity = await self.verify_id_token(id_token, nonce=nonce)
            return await self._with_profile(client, identity)

    async def verify_id_token(self, id_token: str, *, nonce: str) -> GoogleIdentity:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise InvalidIdToken("malformed") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise InvalidIdToken("algorithm or key id not accepted")
        key = await self._jwks.get(kid)
        if key is None:
            raise InvalidIdToken("signed by a key Google does not publish")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key,
                algorithms=["RS256"],
                audience=self.client_id,
                issuer=self.issuers,
                leeway=self._leeway,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidIdToken(str(exc)) from exc
        azp = claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise InvalidIdToken("issued to another client (azp)")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce, nonce):
            raise InvalidIdToken("nonce does not match this sign-in")
        email = claims.get("email")
        return GoogleIdentity(
            subject=str(claims["sub"]),
            email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
            email_verified=_email_verified(claims.get("email_verified")),
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            picture=claims.get("picture") if isinstance(claims.get("picture"), str) else None,
        )

    async def _with_profile(self, client: AsyncOAuth2Client, identity: GoogleIdentity) -> GoogleIdentity:
        """The display name from userinfo; the ID token's claims stand when it does not answer."""
        try:
            response = await client.get(self.userinfo_url)
            response.raise_for_status()
            profile = response.json()
        except (httpx2.HTTPError, ValueError) as exc:
            logger.warning("google userinfo unavailable", extra={"error": type(exc).__name__})
            return identity
        # OpenID Connect Core §5.3.2: userinfo for another subject must not be used.
        if not isinstance(profile, dict) or profile.get("sub") != identity.subject:
            logger.warning("google userinfo subject mismatch; ignored")
            return identity
        name = profile.get("name")
        picture = profile.get("picture")
        return GoogleIdentity(
            subject=identity.subject,
            email=identity.email,
            email_verified=identity.email_verified,
            name=name if isinstance(name, str) and name else identity.name,
            picture=picture if isinstance(picture, str) and picture else identity.picture,
        )

    async def _fetch_jwks(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self._timeout, verify=await self._ssl_context()) as http:
            response = await http.get(self.jwks_url)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

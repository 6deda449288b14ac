"""A local stand-in for Google's OAuth 2.0 / OpenID Connect endpoints, over real HTTP.

It speaks Google's protocol: the authorization endpoint redirects back with `code` and `state`
(or `error=access_denied`), the token endpoint authenticates the client (client_secret_post or
Basic), checks the code's redirect_uri and the PKCE `code_verifier` against its S256 challenge,
and answers with an RS256-signed ID token whose key is published at the JWKS endpoint; userinfo
answers for the access token it issued. Every code is single use.

    with FakeGoogle() as google:
        settings = make_settings(auth={**google.auth_settings(), ...})
        google.user = GoogleUser(sub="1234", email="ann@example.com")
        google.id_token_fault = "wrong_aud"   # the next ID tokens are bad in this way

ID-token faults (`id_token_fault`): `bad_signature` (signed by a key not in the JWKS, same kid),
`wrong_aud`, `wrong_issuer`, `expired`, `wrong_nonce`, `no_nonce`. Other knobs: `deny` (the user
cancels: `error=access_denied`), `token_endpoint_fails` and `userinfo_fails` (503s), and
`redirect_uris` (when set, only these are registered, as in Google's console).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from media_gateway.core.security.signing import SigningKey, generate_signing_key, jwks_document
from tests.fakes.threaded import ThreadedServer

CLIENT_ID = "1234567890-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret"
ISSUER = "https://accounts.google.com"

IdTokenFault = Literal["bad_signature", "wrong_aud", "wrong_issuer", "expired", "wrong_nonce", "no_nonce"]


@dataclass
class GoogleUser:
    sub: str = "108234567890123456789"
    email: str = "ann.example@gmail.com"
    email_verified: bool = True
    name: str = "Ann Example"
    picture: str = "https://lh3.googleusercontent.com/a/fake"


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: GoogleUser


@dataclass
class TokenRequest:
    form: dict[str, str]
    client_auth: Literal["client_secret_post", "client_secret_basic", "none"]


@dataclass
class _State:
    codes: dict[str, _Grant] = field(default_factory=dict)
    access_tokens: dict[str, GoogleUser] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    authorize_params: list[dict[str, str]] = field(default_factory=list)
    userinfo_calls: int = 0


def _error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


class FakeGoogle(ThreadedServer):
    name = "fake-google"

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.key: SigningKey = generate_signing_key("RS256")
        # Plain attributes, so a test can change who signs in and how between requests.
        self.user = GoogleUser()
        self.deny = False
        self.id_token_fault: IdTokenFault | None = None
        self.userinfo_fails = False
        self.token_endpoint_fails = False
        self.redirect_uris: set[str] | None = None
        self._lock = threading.Lock()
        self._state = _State()

    # -- test-facing API --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth_settings(self) -> dict[str, Any]:
        """The `auth` settings that point the Google client at this fake."""
        return {
            "google_client_id": self.client_id,
            "google_client_secret": self.client_secret,
            "google_authorize_url": f"{self.url}/o/oauth2/v2/auth",
            "google_token_url": f"{self.url}/token",
            "google_jwks_url": f"{self.url}/oauth2/v3/certs",
            "google_userinfo_url": f"{self.url}/v1/userinfo",
            "google_issuer": ISSUER,
        }

    def issue_code(
        self,
        *,
        redirect_uri: str,
        nonce: str | None,
        code_challenge: str | None,
        user: GoogleUser | None = None,
        client_id: str | None = None,
    ) -> str:
        """A code as the authorization endpoint would have issued it (for tests that skip it)."""
        code = "4/0A" + secrets.token_urlsafe(32)
        grant = _Grant(
            client_id=client_id or self.client_id,
            redirect_uri=redirect_uri,
            scope="openid email profile",
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method="S256" if code_challenge else None,
            user=user or self.user,
        )
        with self._lock:
            self._state.codes[code] = grant
        return code

    def token_requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._state.token_requests)

    def authorize_requests(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._state.authorize_params)

    @property
    def userinfo_calls(self) -> int:
        with self._lock:
            return self._state.userinfo_calls

    def reset(self) -> None:
        """Forget codes, tokens and records, and undo the knobs (not the registered URIs)."""
        with self._lock:
            self._state = _State()
        self.user = GoogleUser()
        self.deny = False
        self.id_token_fault = None
        self.userinfo_fails = False
        self.token_endpoint_fails = False

    def id_token(self, grant: _Grant, *, fault: IdTokenFault | None = None) -> str:
        now = int(time.time())
        user = grant.user
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "azp": grant.client_id,
            "aud": grant.client_id,
            "sub": user.sub,
            "email": user.email,
            "email_verified": user.email_verified,
            "name": user.name,
            "picture": user.picture,
            "iat": now,
            "exp": now + 3600,
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        key = self.key
        if fault == "bad_signature":
            key = SigningKey(kid=self.key.kid, alg="RS256", private_key=generate_signing_key().private_key)
        elif fault == "wrong_aud":
            claims["aud"] = claims["azp"] = "someone-else.apps.googleusercontent.com"
        elif fault == "wrong_issuer":
            claims["iss"] = "https://accounts.evil.example"
        elif fault == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif fault == "no_nonce":
            claims.pop("nonce", None)
        return key.sign(claims)

    # -- HTTP ---------------------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/o/oauth2/v2/auth", self._authorize, methods=["GET"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/oauth2/v3/certs", self._jwks, methods=["GET"]),
                Route("/v1/userinfo", self._userinfo, methods=["GET"]),
            ]
        )

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        with self._lock:
            self._state.authorize_params.append(params)
        if params.get("client_id") != self.client_id:
            return Response("Error 401: invalid_client", status_code=401)
        redirect_uri = params.get("redirect_uri", "")
        registered = self.redirect_uris
        if not redirect_uri.startswith(("http://", "https://")) or (
            registered is not None and redirect_uri not in registered
        ):
            return Response("Error 400: redirect_uri_mismatch", status_code=400)
        if params.get("response_type") != "code":
            return Response("Error 400: unsupported_response_type", status_code=400)
        state = params.get("state")
        if self.deny:
            query = {"error": "access_denied", "state": state}
        else:
            method = params.get("code_challenge_method")
            if params.get("code_challenge") and method not in (None, "S256", "plain"):
                return Response("Error 400: invalid_request", status_code=400)
            code = self.issue_code(
                redirect_uri=redirect_uri,
                nonce=params.get("nonce"),
                code_challenge=params.get("code_challenge"),
            )
            query = {"code": code, "scope": params.get("scope", ""), "state": state}
        separator = "&" if "?" in redirect_uri else "?"
        query_string = urlencode({k: v for k, v in query.items() if v is not None})
        return RedirectResponse(f"{redirect_uri}{separator}{query_string}", status_code=302)

    def _client_credentials(
        self, request: Request, form: dict[str, str]
    ) -> tuple[str | None, str | None, Literal["client_secret_post", "client_secret_basic", "none"]]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            decoded = base64.b64decode(header[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            return client_id, secret, "client_secret_basic"
        if "client_secret" in form:
            return form.get("client_id"), form["client_secret"], "client_secret_post"
        return form.get("client_id"), None, "none"

    async def _token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        client_id, secret, method = self._client_credentials(request, form)
        with self._lock:
            self._state.token_requests.append(TokenRequest(form=form, client_auth=method))
        if self.token_endpoint_fails:
            return Response("<html>Server Error</html>", status_code=503, media_type="text/html")
        if client_id != self.client_id or secret is None:
            return _error("invalid_client", "The OAuth client was not found.", 401)
        if not hmac.compare_digest(secret, self.client_secret):
            return _error("invalid_client", "Unauthorized", 401)
        if form.get("grant_type") != "authorization_code":
            return _error("unsupported_grant_type", "Invalid grant_type: " + form.get("grant_type", ""))
        with self._lock:
            grant = self._state.codes.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client_id:
            return _error("invalid_grant", "Malformed auth code.")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _error("redirect_uri_mismatch", "Bad Request")
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return _error("invalid_request", "code_verifier or verifier is not needed.")
            expected = _s256(verifier) if grant.code_challenge_method == "S256" else verifier
            if not hmac.compare_digest(expected, grant.code_challenge):
                return _error("invalid_grant", "Invalid code verifier.")
        access_token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._state.access_tokens[access_token] = grant.user
        body: dict[str, Any] = {
            "access_token": access_token,
            "expires_in": 3599,
            "scope": "openid https://www.googleapis.com/auth/userinfo.email "
            "https://www.googleapis.com/auth/userinfo.profile",
            "token_type": "Bearer",
        }
        if "openid" in grant.scope.split():
            body["id_token"] = self.id_token(grant, fault=self.id_token_fault)
        return JSONResponse(body, headers={"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})

    async def _jwks(self, request: Request) -> Response:
        return JSONResponse(jwks_document([self.key]))

    async def _userinfo(self, request: Request) -> Response:
        with self._lock:
            self._state.userinfo_calls += 1
        if self.userinfo_fails:
            return _error("internal_failure", "Backend Error", 503)
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._lock:
            user = self._state.access_tokens.get(token)
        if user is None:
            return JSONResponse(
                {"error": "invalid_request", "error_description": "Invalid Credentials"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse(
            {
                "sub": user.sub,
                "name": user.name,
                "given_name": user.name.split(" ")[0],
                "picture": user.picture,
                "email": user.email,
                "email_verified": user.email_verified,
            }
        )

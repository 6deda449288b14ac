"""RFC 8707 resource indicators: which of our resources a token is for.

A token asked for a resource carries it in `aud` beside the system audience every service verifies
(`auth.audience`), so existing verification keeps working while a resource server that checks its own
identifier (the MCP endpoint, RFC 9728) can. One resource per request: a grant is bound to it, and a
token request may repeat it but never name another."""

from __future__ import annotations

from urllib.parse import urlsplit

from media_gateway.auth.errors import OAuthError
from media_gateway.core.settings import Settings

# The MCP endpoint's path; media_gateway.mcp.auth.resource_url builds the same identifier.
MCP_PATH = "/mcp"


def _canonical(uri: str) -> str:
    """Scheme and host are case-insensitive and a bare trailing slash names the same resource."""
    parts = urlsplit(uri)
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}{query}"


def allowed_resources(settings: Settings) -> list[str]:
    configured = [uri.strip() for uri in settings.auth.resource_indicators if uri.strip()]
    if configured:
        return configured
    mcp = settings.mcp.public_url.rstrip("/") or f"{settings.service_url('mcp')}{MCP_PATH}"
    return [settings.service_url("gateway"), mcp]


def resolve_resource(settings: Settings, requested: str | None) -> str | None:
    """The resource as we name it (the configured spelling), None when none was asked for.

    Raises OAuthError `invalid_target` for a malformed URI or one this system does not serve."""
    if requested is None:
        return None
    parts = urlsplit(requested)
    if not parts.scheme or not parts.netloc or "#" in requested:
        raise OAuthError("invalid_target", "resource must be an absolute URI without a fragment")
    wanted = _canonical(requested)
    for allowed in allowed_resources(settings):
        if _canonical(allowed) == wanted:
            return allowed
    raise OAuthError("invalid_target", f"unknown resource: {requested}")


def granted_resource(settings: Settings, granted: str | None, requested: str | None) -> str | None:
    """The resource of a token issued from a grant bound to `granted`: a token request may name the
    same resource again, or none, but never one the grant was not for."""
    resource = resolve_resource(settings, requested)
    if resource is not None and resource != granted:
        raise OAuthError("invalid_target", "the grant was not issued for this resource")
    return granted


def audience(settings: Settings, resource: str | None) -> str | list[str]:
    system = settings.auth.audience
    if resource is None or resource == system:
        return system
    return [system, resource]

"""`media-gateway auth ...`: register OAuth clients and rotate signing keys straight in the database."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from media_gateway.core.settings import Settings

# Kept literal so that building the parser (`--help`) imports no database code.
_GRANT_CHOICES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    auth = sub.add_parser("auth", help="auth service administration: OAuth clients, signing keys")
    commands = auth.add_subparsers(dest="auth_command", required=True)
    create = commands.add_parser(
        "create-client", help="register an OAuth client; prints it (secret once) as JSON"
    )
    create.add_argument("--name", required=True)
    create.add_argument("--client-id", help="default: a random id")
    create.add_argument("--redirect-uri", action="append", default=[], help="repeatable; exact-match")
    create.add_argument(
        "--grant", action="append", choices=_GRANT_CHOICES, help="repeatable; default: code + refresh"
    )
    create.add_argument(
        "--scope", action="append", help="repeatable; default: openid profile email offline_access"
    )
    create.add_argument("--public", action="store_true", help="no secret (apps, SPAs, TVs); PKCE is required")
    create.add_argument("--data-dir", type=Path, help="overrides MG_DATA_DIR")
    rotate = commands.add_parser(
        "rotate-keys", help="new signing key; the old one stays published for a while"
    )
    rotate.add_argument("--data-dir", type=Path, help="overrides MG_DATA_DIR")


async def _create_client(settings: Settings, args: argparse.Namespace) -> int:
    from media_gateway.auth.oauth_clients import create_client
    from media_gateway.core.db import make_engine

    engine = make_engine(settings, application_name="media-gateway-cli")
    try:
        async with engine.begin() as conn:
            created = await create_client(
                conn,
                name=args.name,
                client_id=args.client_id,
                redirect_uris=args.redirect_uri,
                grant_types=args.grant or ["authorization_code", "refresh_token"],
                scopes=args.scope or ["openid", "profile", "email", "offline_access"],
                confidential=not args.public,
            )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    client = created.client
    print(
        json.dumps(
            {
                "client_id": client.client_id,
                "client_secret": created.secret,
                "name": client.name,
                "confidential": created.secret is not None,
                "redirect_uris": client.redirect_uris,
                "grant_types": client.grant_types,
                "scopes": client.scopes,
            }
        )
    )
    return 0


async def _rotate(settings: Settings) -> int:
    from media_gateway.auth.keys import rotate_keys
    from media_gateway.core.db import make_engine

    engine = make_engine(settings, application_name="media-gateway-cli")
    try:
        keys = await rotate_keys(engine, settings)
    finally:
        await engine.dispose()
    print(json.dumps({"current_kid": keys.current.kid, "published_kids": [k.kid for k in keys.published]}))
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.auth_command == "create-client":
        return asyncio.run(_create_client(settings, args))
    return asyncio.run(_rotate(settings))

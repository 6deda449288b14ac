from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import cast

from media_gateway.core.migrations import SCHEMA_OWNERS
from media_gateway.core.settings import SERVICE_NAMES, ServiceName, Settings


def _workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 64")
    return int(value)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="media-gateway",
        description="Media Gateway: what should I watch tonight, and where? Configure with MG_* variables.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run every service in one process (embedded PostgreSQL/Valkey if no URLs)")
    up.add_argument("--data-dir", type=Path, help="overrides MG_DATA_DIR")

    serve = sub.add_parser(
        "serve",
        help="run one service, or several in one process (the container entry point)",
        description="Several names run in one process (`serve discovery sona ingestion`). With --workers, "
        "one service runs as that many processes; ingestion runs as one.",
    )
    serve.add_argument(
        "names", nargs="+", choices=SERVICE_NAMES, metavar="NAME", help=", ".join(SERVICE_NAMES)
    )
    serve.add_argument("--port", type=int, help="overrides MG_PORTS__<NAME>; one NAME only")
    serve.add_argument("--host", help="overrides MG_HOST")
    serve.add_argument("--workers", type=_workers, help="processes sharing the port; overrides MG_WORKERS")

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument(
        "--schema", action="append", choices=sorted(SCHEMA_OWNERS), help="only these schemas"
    )
    migrate.add_argument("--data-dir", type=Path, help="overrides MG_DATA_DIR")

    ingest = sub.add_parser("ingest", help="ingest a catalog source or run enrichment, then exit")
    what = ingest.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--demo", action="store_true", help="the demo catalog (TMDB 5000, generated availability)"
    )
    what.add_argument("--file", type=Path, help="a <platform>.jsonl feed file or a directory of them")
    what.add_argument("--aggregator", action="store_true", help="the configured aggregator API")
    what.add_argument("--enrich", action="store_true", help="re-embed stale content, update quality scores")
    ingest.add_argument("--data-dir", type=Path, help="overrides MG_DATA_DIR")

    sub.add_parser(
        "mcp-stdio",
        help="the MCP tools over stdin/stdout (the user's token from MG_MCP__ACCESS_TOKEN)",
    )

    from media_gateway.auth.cli import add_parser as add_auth_parser

    add_auth_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None):
        overrides["data_dir"] = args.data_dir
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    settings = Settings(**overrides)  # type: ignore[arg-type]

    if args.command == "auth":
        from media_gateway.auth.cli import run as run_auth

        return run_auth(settings, args)

    if args.command == "mcp-stdio":
        import asyncio

        from media_gateway.core.logging import configure_logging
        from media_gateway.mcp.stdio import run_stdio

        configure_logging(settings.log_level, settings.log_json)
        asyncio.run(run_stdio(settings))
        return 0

    # Imported late: `--help` should not pay for loading every service.
    from media_gateway import runner

    if args.command == "up":
        return runner.up(settings)
    if args.command == "serve":
        return runner.serve(settings, cast(list[ServiceName], args.names), args.port)
    if args.command == "migrate":
        return runner.migrate(settings, args.schema)
    if args.command == "ingest":
        if args.enrich:
            return runner.ingest(settings, "enrich")
        if args.file:
            return runner.ingest(settings, "file", args.file.resolve())
        return runner.ingest(settings, "demo" if args.demo else "aggregator")
    return 2


if __name__ == "__main__":
    sys.exit(main())

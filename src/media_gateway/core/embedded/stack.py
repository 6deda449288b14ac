"""Both embedded servers together: started in parallel, stopped together."""

from __future__ import annotations

import asyncio
from types import TracebackType

from media_gateway.core.embedded.postgres import EmbeddedPostgres
from media_gateway.core.embedded.process import EmbeddedServerError
from media_gateway.core.embedded.valkey import EmbeddedValkey
from media_gateway.core.settings import Settings


class EmbeddedStack:
    """Starts, in parallel, whichever embedded servers the settings need (none when both URLs are
    configured), and stops them all. Use `async with EmbeddedStack(settings) as stack:`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = EmbeddedPostgres(settings) if settings.uses_embedded_postgres else None
        self.valkey = EmbeddedValkey(settings) if settings.uses_embedded_redis else None

    @property
    def servers(self) -> list[EmbeddedPostgres | EmbeddedValkey]:
        return [s for s in (self.postgres, self.valkey) if s is not None]

    @property
    def pids(self) -> dict[str, int]:
        """Pids of the running servers, keyed "postgres" / "valkey" (for orphan checks)."""
        found: dict[str, int] = {}
        if self.postgres is not None and self.postgres.pid is not None:
            found["postgres"] = self.postgres.pid
        if self.valkey is not None and self.valkey.pid is not None:
            found["valkey"] = self.valkey.pid
        return found

    async def start(self) -> None:
        """Start every needed server; if any fails, stop those that started and raise."""
        try:
            results = await asyncio.gather(*(s.start() for s in self.servers), return_exceptions=True)
        except BaseException:
            await self.stop()
            raise
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return
        await self.stop()
        if len(failures) > 1 and all(isinstance(f, EmbeddedServerError) for f in failures):
            raise EmbeddedServerError("\n".join(str(f) for f in failures)) from failures[0]
        raise failures[0]

    async def stop(self) -> None:
        """Stop every server in parallel. Safe to call twice or after a failed start."""
        await asyncio.gather(*(s.stop() for s in self.servers))

    async def __aenter__(self) -> EmbeddedStack:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

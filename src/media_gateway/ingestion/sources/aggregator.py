"""A Streaming-Availability-style aggregator API as a `CatalogSource`.

Protocol (one country per request, pages chained by an opaque cursor):

    GET {aggregator_url}/changes?country=US&limit=100[&since=<next_cursor of the previous page>]
    X-API-Key: <key>

    200 {"changes": [{"platform": "netflix", "record": {...platform-shaped record...}}, ...],
         "next_cursor": "...", "has_more": true}

Every attempt on the wire takes a token from a client-side bucket (`aggregator_rate_per_sec`); 502/503/
504 and transport errors are retried with jittered backoff by `ServiceClient`; a 429 is waited out for
its Retry-After. The position is one cursor per country, persisted together as a JSON object under
the source's name, so adding a country to the settings starts that country from scratch and leaves
the others where they were.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from media_gateway.core.breaker import CircuitOpenError
from media_gateway.core.http import HttpClientFactory, ServiceClient
from media_gateway.core.settings import Settings
from media_gateway.ingestion.schemas import RawBatch
from media_gateway.ingestion.sources.base import SourceStats
from media_gateway.ingestion.sources.ratelimit import RateLimitedTransport, TokenBucket
from media_gateway.ingestion.sources.repository import get_cursor, set_cursor

logger = logging.getLogger(__name__)

API_KEY_HEADER: Final = "X-API-Key"
UPSTREAM: Final = "aggregator"
# When a 429 carries no usable Retry-After, wait this long rather than hammering the provider.
DEFAULT_RETRY_AFTER_SEC: Final = 1.0
_EXCERPT_CHARS: Final = 200


class AggregatorError(RuntimeError):
    """The aggregator run stopped; the committed cursor is intact, so the next run resumes."""


class AggregatorAuthError(AggregatorError):
    """The provider refused our API key (401/403): retrying cannot help, the configuration must change."""


class AggregatorUnavailableError(AggregatorError):
    """Unreachable, failing (5xx after retries), or throttling us past what we are willing to wait."""


class AggregatorResponseError(AggregatorError):
    """The provider answered something outside the protocol (another 4xx, a body we cannot read)."""


class _Page(BaseModel):
    changes: list[Any]
    next_cursor: str | None = None
    has_more: bool = False


class AggregatorSource:
    """A `CatalogSource` over the aggregator's `/changes` feed, one cursor per configured country."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        http: HttpClientFactory | None = None,
        name: str = "aggregator",
        bucket: TokenBucket | None = None,
    ) -> None:
        """`http`: the app's factory, so the aggregator's breaker and metrics are the app's (default:
        one of its own). `bucket`: share one between sources using the same API key (the quota is per
        key)."""
        config = settings.ingestion
        if not config.aggregator_url:
            raise ValueError("ingestion.aggregator_url is not configured")
        if not config.aggregator_countries:
            raise ValueError("ingestion.aggregator_countries is empty")
        self.name = name
        self.stats = SourceStats()
        self._settings = config
        self._engine = engine
        self._http = http or HttpClientFactory(settings)
        self._countries = [country.upper() for country in config.aggregator_countries]
        self.bucket = bucket or TokenBucket(config.aggregator_rate_per_sec, config.aggregator_burst)

    async def fetch(self) -> AsyncIterator[RawBatch]:
        self.stats = SourceStats()
        async with self._engine.connect() as conn:
            stored = await get_cursor(conn, self.name)
        positions = self._decode(stored)
        # One client per run, closed with it: the pipeline owns the run, not the source's lifetime.
        client = self._http.client(
            UPSTREAM,
            self._settings.aggregator_url,
            read_timeout_sec=self._settings.aggregator_timeout_sec,
            retries=self._settings.aggregator_retries,
            headers={
                API_KEY_HEADER: self._settings.aggregator_api_key.get_secret_value(),
                "Accept": "application/json",
            },
            # httpx ignores proxy environment variables once a transport is given; set a proxy on
            # the inner transport here if one is ever needed.
            transport=RateLimitedTransport(self.bucket, httpx.AsyncHTTPTransport()),
        )
        try:
            for country in self._countries:
                async for batch in self._fetch_country(client, country, positions):
                    yield batch
        finally:
            await client.aclose()
        logger.info("aggregator run finished", extra={"source": self.name, **self.stats.as_counts()})

    async def commit(self, batch: RawBatch) -> None:
        if batch.cursor is None:
            return
        self._decode(batch.cursor)  # never persist a position the next run could not resume from
        async with self._engine.begin() as conn:
            await set_cursor(conn, self.name, batch.cursor)

    async def _fetch_country(
        self, client: ServiceClient, country: str, positions: dict[str, str]
    ) -> AsyncIterator[RawBatch]:
        while True:
            since = positions.get(country)
            page = await self._get_page(client, country, since)
            groups = self._group(page, country)
            # Only the page's last batch may carry the advanced position: committing it after an
            # earlier platform's batch would skip the later platforms of the page after a crash.
            before = _encode(positions)
            if page.next_cursor is not None:
                positions[country] = page.next_cursor
            after = _encode(positions)
            for index, (platform, records) in enumerate(groups.items()):
                self.stats.batches += 1
                self.stats.records += len(records)
                yield RawBatch(
                    source=self.name,
                    platform=platform,
                    records=records,
                    cursor=after if index == len(groups) - 1 else before,
                )
            if not page.has_more:
                return
            if page.next_cursor is None or page.next_cursor == since:
                # Following it would fetch the same page forever.
                raise AggregatorResponseError(
                    f"aggregator said has_more for {country} without advancing next_cursor"
                )

    def _group(self, page: _Page, country: str) -> dict[str, list[dict[str, Any]]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for position, change in enumerate(page.changes):
            platform = change.get("platform") if isinstance(change, dict) else None
            record = change.get("record") if isinstance(change, dict) else None
            if not isinstance(platform, str) or not platform or not isinstance(record, dict):
                self.stats.skip(f"{country} change #{position}: needs a platform and a record object")
                continue
            groups.setdefault(platform, []).append(record)
        return groups

    async def _get_page(self, client: ServiceClient, country: str, since: str | None) -> _Page:
        params: dict[str, str | int] = {"country": country, "limit": self._settings.aggregator_page_size}
        if since is not None:
            params["since"] = since
        throttled = 0
        while True:
            response = await self._send(client, params)
            if response.status_code != 429:
                break
            throttled += 1
            delay = retry_after_seconds(response.headers.get("Retry-After"))
            if throttled > self._settings.aggregator_max_throttled:
                raise AggregatorUnavailableError(f"aggregator kept answering 429 ({throttled} times)")
            if delay > self._settings.aggregator_max_retry_after_sec:
                raise AggregatorUnavailableError(
                    f"aggregator asked us to wait {delay:.0f} s (429), more than "
                    f"aggregator_max_retry_after_sec={self._settings.aggregator_max_retry_after_sec:.0f}"
                )
            logger.info(
                "aggregator throttled us; waiting",
                extra={"source": self.name, "country": country, "retry_after_sec": delay},
            )
            await asyncio.sleep(delay)

        status = response.status_code
        if status in (401, 403):
            raise AggregatorAuthError(
                f"aggregator at {client.base_url} rejected the API key (HTTP {status}); check "
                f"MG_INGESTION__AGGREGATOR_API_KEY: {self._excerpt(response)}"
            )
        if status >= 500:
            raise AggregatorUnavailableError(
                f"aggregator answered HTTP {status} after {self._settings.aggregator_retries + 1} attempts"
            )
        if status != 200:
            raise AggregatorResponseError(f"aggregator answered HTTP {status}: {self._excerpt(response)}")
        try:
            return _Page.model_validate(orjson.loads(response.content))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise AggregatorResponseError(f"aggregator sent an unreadable /changes page: {exc}") from exc

    async def _send(self, client: ServiceClient, params: dict[str, str | int]) -> httpx.Response:
        self.stats.requests += 1
        try:
            return await client.get("changes", params=params)
        except CircuitOpenError as exc:
            raise AggregatorUnavailableError(
                f"aggregator circuit is open after repeated failures; retry in {exc.retry_after:.0f} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise AggregatorUnavailableError(f"aggregator unreachable: {type(exc).__name__}: {exc}") from exc

    def _excerpt(self, response: httpx.Response) -> str:
        text = response.text[:_EXCERPT_CHARS] or "(empty body)"
        key = self._settings.aggregator_api_key.get_secret_value()
        # Some providers echo the offending key back; it must not reach our logs or job errors.
        return text.replace(key, "***") if key else text

    def _decode(self, cursor: str | None) -> dict[str, str]:
        if cursor is None:
            return {}
        try:
            value = orjson.loads(cursor)
        except orjson.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise AggregatorError(
                f"cursor of source {self.name!r} is not a JSON object of country -> cursor; "
                "delete it (ingestion.source_cursors) to start over"
            )
        return dict(value)


def _encode(positions: dict[str, str]) -> str:
    return orjson.dumps(positions, option=orjson.OPT_SORT_KEYS).decode()


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float:
    """RFC 9110 §10.2.3: delay-seconds or an HTTP-date; anything unreadable gets the default."""
    if value is None:
        return DEFAULT_RETRY_AFTER_SEC
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_SEC
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)

"""The contract every platform normalizer keeps, and the batch loop that isolates bad records."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from media_gateway.catalog.schemas import (
    ExternalId,
    IdType,
    Monetization,
    NormalizedContent,
    NormalizeResult,
    OfferIn,
    Rejection,
    platform_id_type,
)
from media_gateway.ingestion.normalizers import fields
from media_gateway.ingestion.normalizers.genres import GenreMatch, GenreTable, match_genres
from media_gateway.ingestion.normalizers.links import deep_links

logger = logging.getLogger(__name__)

# What a malformed raw value raises inside a converter; anything else is a bug and is logged as one.
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, InvalidOperation, OverflowError)


class RecordRejected(Exception):
    """A raw record that cannot become canonical content; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PlatformNormalizer(ABC):
    """Maps one platform's raw records onto canonical content plus that platform's offers.

    Subclasses say where the id and genre labels are and build the content; this class checks the id,
    maps genres through `genre_rules`, turns malformed values into rejections and de-duplicates offers."""

    platform: str
    genre_rules: GenreTable = {}

    @abstractmethod
    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        """The platform's content id of `raw`, or None when it has none."""

    @abstractmethod
    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        """The genre labels of `raw` as the platform spells them."""

    @abstractmethod
    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        """Canonical content for `raw`; raise RecordRejected (or ValueError) for what cannot be used."""

    def normalize(self, raw: Mapping[str, Any]) -> NormalizedContent:
        content, _ = self._normalize(raw)
        return content

    def normalize_batch(self, records: Iterable[Mapping[str, Any]]) -> NormalizeResult:
        result = NormalizeResult()
        unknown: Counter[str] = Counter()
        for raw in records:
            try:
                content, match = self._normalize(raw)
            except RecordRejected as exc:
                result.rejected.append(Rejection(source_id=self._safe_record_id(raw), reason=exc.reason))
                continue
            except Exception as exc:
                # One bad record must not stop the batch, even when the fault is ours.
                logger.exception("normalizer %s failed on a record", self.platform)
                reason = f"error: {type(exc).__name__}: {exc}"
                result.rejected.append(Rejection(source_id=self._safe_record_id(raw), reason=reason))
                continue
            result.items.append(content)
            unknown.update(match.unknown)
        result.unknown_genres = dict(sorted(unknown.items()))
        if result.rejected:
            logger.info(
                "normalizer %s rejected %d of %d records",
                self.platform,
                len(result.rejected),
                len(result.rejected) + len(result.items),
            )
        return result

    def _normalize(self, raw: Mapping[str, Any]) -> tuple[NormalizedContent, GenreMatch]:
        if not isinstance(raw, Mapping):
            raise RecordRejected("not an object")
        try:
            source_id = self.record_id(raw)
            if source_id is None:
                raise RecordRejected("missing id")
            match = match_genres(self.genre_labels(raw), self.genre_rules)
            content = self.convert(raw, source_id, match)
        except RecordRejected:
            raise
        except ValidationError as exc:
            raise RecordRejected(f"invalid: {_summary(exc)}") from exc
        except _MALFORMED as exc:
            raise RecordRejected(f"malformed: {type(exc).__name__}: {exc}") from exc
        return _dedupe_offers(content), match

    def _safe_record_id(self, raw: Any) -> str | None:
        try:
            return self.record_id(raw) if isinstance(raw, Mapping) else None
        except _MALFORMED:
            return None

    # Helpers for subclasses.

    @staticmethod
    def require_title(value: Any) -> str:
        title = fields.text(value)
        if title is None:
            raise RecordRejected("missing title")
        return title

    def external_ids(
        self, source_id: str, *, imdb: Any = None, tmdb: Any = None, eidr: Any = None
    ) -> list[ExternalId]:
        """The platform id plus whichever well-formed standard ids the record carries."""
        ids = [ExternalId(id_type=platform_id_type(self.platform), value=source_id)]
        for id_type, value in (
            (IdType.EIDR, fields.eidr_id(eidr)),
            (IdType.IMDB, fields.imdb_id(imdb)),
            (IdType.TMDB, fields.tmdb_id(tmdb)),
        ):
            if value is not None:
                ids.append(ExternalId(id_type=id_type.value, value=value))
        return ids

    def offer(
        self,
        source_id: str,
        *,
        region: Any,
        monetization: Monetization,
        tier: str | None = None,
        price: Decimal | None = None,
        currency: Any = None,
        quality: Any = None,
        available_since: date | None = None,
        expires_on: date | None = None,
    ) -> OfferIn:
        return OfferIn(
            platform=self.platform,
            region=fields.code(region) or "",
            monetization=monetization,
            tier=tier,
            price=price,
            currency=fields.code(currency) if price is not None else None,
            quality=fields.quality(quality),
            deep_links=deep_links(self.platform, source_id),
            platform_content_id=source_id,
            available_since=available_since,
            expires_on=expires_on,
        )


def _dedupe_offers(content: NormalizedContent) -> NormalizedContent:
    """At most one offer per (region, monetization), the first listed, as the offers table requires."""
    seen: set[tuple[str, Monetization]] = set()
    kept: list[OfferIn] = []
    for offer in content.offers:
        key = (offer.region, offer.monetization)
        if key not in seen:
            seen.add(key)
            kept.append(offer)
    if len(kept) == len(content.offers):
        return content
    return content.model_copy(update={"offers": kept})


def _summary(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:3]]
    return "; ".join(parts)

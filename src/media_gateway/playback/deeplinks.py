"""Which catalog offer a session's deep link comes from."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from media_gateway.catalog.schemas import MONETIZATION_RANK, Offer
from media_gateway.playback.schemas import DeepLinkOut


def _order(offer: Offer) -> tuple[int, Decimal, str]:
    return (MONETIZATION_RANK[offer.monetization], offer.price or Decimal(0), offer.platform)


def pick_offer(offers: Iterable[Offer], platform: str | None) -> Offer | None:
    """The offer on `platform`, or the best in the region when no platform is named (the one a search
    card shows first); only offers carrying at least one link count."""
    linked = [
        o
        for o in offers
        if (o.deep_links.app or o.deep_links.web or o.deep_links.tv)
        and (platform is None or o.platform == platform)
    ]
    return min(linked, key=_order, default=None)


def deep_link(offer: Offer | None, position_seconds: float) -> DeepLinkOut | None:
    if offer is None:
        return None
    return DeepLinkOut(
        platform=offer.platform,
        region=offer.region,
        monetization=offer.monetization,
        app=offer.deep_links.app,
        web=offer.deep_links.web,
        tv=offer.deep_links.tv,
        position_seconds=position_seconds,
    )

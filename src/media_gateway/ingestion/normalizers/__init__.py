"""One normalizer per platform, from its raw feed records to canonical content and offers."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from media_gateway.ingestion.normalizers.apple_tv_plus import AppleTvPlusNormalizer
from media_gateway.ingestion.normalizers.base import PlatformNormalizer, RecordRejected
from media_gateway.ingestion.normalizers.disney_plus import DisneyPlusNormalizer
from media_gateway.ingestion.normalizers.generic import GenericNormalizer
from media_gateway.ingestion.normalizers.hbo_max import HboMaxNormalizer
from media_gateway.ingestion.normalizers.hulu import HuluNormalizer
from media_gateway.ingestion.normalizers.netflix import NetflixNormalizer
from media_gateway.ingestion.normalizers.paramount_plus import ParamountPlusNormalizer
from media_gateway.ingestion.normalizers.peacock import PeacockNormalizer
from media_gateway.ingestion.normalizers.prime_video import PrimeVideoNormalizer
from media_gateway.ingestion.normalizers.youtube import YouTubeNormalizer

# Normalizers hold no state, so one shared instance per platform serves every batch.
NORMALIZERS: Mapping[str, PlatformNormalizer] = MappingProxyType(
    {
        n.platform: n
        for n in (
            NetflixNormalizer(),
            PrimeVideoNormalizer(),
            DisneyPlusNormalizer(),
            HboMaxNormalizer(),
            HuluNormalizer(),
            AppleTvPlusNormalizer(),
            ParamountPlusNormalizer(),
            PeacockNormalizer(),
            YouTubeNormalizer(),
        )
    }
)


def get_normalizer(platform: str) -> PlatformNormalizer:
    """The platform's own normalizer, or the generic one for a platform without one."""
    return NORMALIZERS.get(platform) or GenericNormalizer(platform)


__all__ = [
    "NORMALIZERS",
    "AppleTvPlusNormalizer",
    "DisneyPlusNormalizer",
    "GenericNormalizer",
    "HboMaxNormalizer",
    "HuluNormalizer",
    "NetflixNormalizer",
    "ParamountPlusNormalizer",
    "PeacockNormalizer",
    "PlatformNormalizer",
    "PrimeVideoNormalizer",
    "RecordRejected",
    "YouTubeNormalizer",
    "get_normalizer",
]

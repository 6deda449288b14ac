"""What every normalizer must do, checked on each platform's sample record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pytest

from media_gateway.catalog.schemas import PLATFORMS, ContentKind, NormalizedContent
from media_gateway.ingestion.normalizers import (
    NORMALIZERS,
    GenericNormalizer,
    PlatformNormalizer,
    RecordRejected,
    fields,
    get_normalizer,
)
from media_gateway.ingestion.normalizers.genres import GenreMatch, GenreRule, genre_table
from tests.ingestion import normalizer_samples as samples
from tests.ingestion.normalizer_samples import SYNOPSIS

ALL = samples.PLATFORMS

# Written out from the deep-link rules for each sample's id: (app, web, tv).
EXPECTED_LINKS: dict[str, tuple[str | None, str | None, str | None]] = {
    "netflix": ("netflix://title/80117401", "https://www.netflix.com/title/80117401", None),
    "prime_video": (
        "aiv://aiv/view?gti=amzn1.dv.gti.4ab0f7c2-1d3e-4f5a-8b9c-0d1e2f3a4b5c",
        "https://www.amazon.com/gp/video/detail/amzn1.dv.gti.4ab0f7c2-1d3e-4f5a-8b9c-0d1e2f3a4b5c",
        None,
    ),
    "disney_plus": (
        "disneyplus://content/3ZCyd2SQJWTu",
        "https://www.disneyplus.com/video/3ZCyd2SQJWTu",
        None,
    ),
    "hbo_max": (
        "hbomax://content/7d4a3c1e-2b5f-4c6d-8e9f-0a1b2c3d4e5f",
        "https://www.hbomax.com/video/7d4a3c1e-2b5f-4c6d-8e9f-0a1b2c3d4e5f",
        None,
    ),
    "hulu": (
        "hulu://watch/5b1a2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d",
        "https://www.hulu.com/watch/5b1a2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d",
        None,
    ),
    "apple_tv_plus": (
        "videos://watch/umc.cmc.1p2q3r4s5t6u7v8w9x0y1z2a3",
        "https://tv.apple.com/us/video/umc.cmc.1p2q3r4s5t6u7v8w9x0y1z2a3",
        "com.apple.tv://watch/umc.cmc.1p2q3r4s5t6u7v8w9x0y1z2a3",
    ),
    "paramount_plus": (
        "paramountplus://content/wjQ4RChi6BHHu4MVTncppVuCwu44uq2Q",
        "https://www.paramountplus.com/movies/wjQ4RChi6BHHu4MVTncppVuCwu44uq2Q",
        None,
    ),
    "peacock": (
        "peacock://watch/0f6e2d4c-3b1a-4c5d-9e8f-7a6b5c4d3e2f",
        "https://www.peacocktv.com/watch/0f6e2d4c-3b1a-4c5d-9e8f-7a6b5c4d3e2f",
        None,
    ),
    "youtube": ("vnd.youtube://watch?v=x9Ab3_dEfGh", "https://www.youtube.com/watch?v=x9Ab3_dEfGh", None),
}
SOURCE_IDS = {
    "netflix": "80117401",
    "prime_video": "amzn1.dv.gti.4ab0f7c2-1d3e-4f5a-8b9c-0d1e2f3a4b5c",
    "disney_plus": "3ZCyd2SQJWTu",
    "hbo_max": "7d4a3c1e-2b5f-4c6d-8e9f-0a1b2c3d4e5f",
    "hulu": "5b1a2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d",
    "apple_tv_plus": "umc.cmc.1p2q3r4s5t6u7v8w9x0y1z2a3",
    "paramount_plus": "wjQ4RChi6BHHu4MVTncppVuCwu44uq2Q",
    "peacock": "0f6e2d4c-3b1a-4c5d-9e8f-7a6b5c4d3e2f",
    "youtube": "x9Ab3_dEfGh",
    "tubi": "824671347",
}


def normalize(platform: str, record: Mapping[str, Any]) -> NormalizedContent:
    return get_normalizer(platform).normalize(record)


def test_every_platform_has_its_own_normalizer_and_others_get_the_generic_one() -> None:
    assert set(NORMALIZERS) == set(PLATFORMS)
    for platform in PLATFORMS:
        normalizer = get_normalizer(platform)
        assert normalizer is NORMALIZERS[platform]
        assert normalizer.platform == platform
        assert not isinstance(normalizer, GenericNormalizer)
    tubi = get_normalizer("tubi")
    assert isinstance(tubi, GenericNormalizer)
    assert tubi.platform == "tubi"


@pytest.mark.parametrize("name", ["", "Tubi", "has space", "x" * 40, "-tubi"])
def test_the_generic_normalizer_refuses_names_that_cannot_be_a_platform(name: str) -> None:
    with pytest.raises(ValueError, match="not a platform name"):
        get_normalizer(name)


@pytest.mark.parametrize("platform", ALL)
def test_sample_becomes_the_canonical_title(platform: str) -> None:
    content = normalize(platform, samples.sample(platform))

    assert content.kind is ContentKind.MOVIE
    assert content.title == "Avatar"
    assert content.original_title == "Avatar"
    assert content.year == 2009
    assert content.runtime_minutes == 162
    assert content.overview == SYNOPSIS
    assert content.directors == ["James Cameron"]
    assert [c.name for c in content.cast[:2]] == ["Sam Worthington", "Zoe Saldana"]
    assert [c.order for c in content.cast] == list(range(len(content.cast)))
    assert {"Action", "Science Fiction"} <= set(content.genres)
    assert content.is_original is False
    assert content.source_platform == platform
    assert content.source_id == SOURCE_IDS[platform]
    assert content.offers, "every sample has offers"
    for offer in content.offers:
        assert offer.platform == platform
        assert offer.platform_content_id == SOURCE_IDS[platform]


@pytest.mark.parametrize("platform", ALL)
def test_external_ids_carry_the_platform_id_and_the_standard_ids_present(platform: str) -> None:
    content = normalize(platform, samples.sample(platform))
    ids = {(e.id_type, e.value) for e in content.external_ids}

    assert (f"platform:{platform}", SOURCE_IDS[platform]) in ids
    if platform == "apple_tv_plus":
        assert len(ids) == 1  # the Apple feed has no standard ids
    else:
        assert {("imdb", "tt0499549"), ("tmdb", "19995")} <= ids


@pytest.mark.parametrize("platform", sorted(EXPECTED_LINKS))
def test_deep_links_follow_the_platform_rules(platform: str) -> None:
    content = normalize(platform, samples.sample(platform))
    app, web, tv = EXPECTED_LINKS[platform]

    for offer in content.offers:
        assert (offer.deep_links.app, offer.deep_links.web, offer.deep_links.tv) == (app, web, tv)


@pytest.mark.parametrize("platform", ALL)
def test_action_and_adventure_means_both(platform: str) -> None:
    content = normalize(platform, samples.with_genres(platform, ["Action & Adventure"]))
    assert content.genres == ["Action", "Adventure"]


@pytest.mark.parametrize("platform", ALL)
def test_true_crime_means_crime_and_documentary(platform: str) -> None:
    content = normalize(platform, samples.with_genres(platform, ["True Crime", "Crime"]))
    assert content.genres == ["Crime", "Documentary"]


@pytest.mark.parametrize("platform", ALL)
def test_unknown_genres_are_dropped_and_counted(platform: str) -> None:
    records = [
        samples.with_genres(platform, ["Drama", "Feel-Good Vibes"]),
        samples.with_genres(platform, ["feel good", "Feel-Good Vibes", "Comedy"]),
    ]

    result = get_normalizer(platform).normalize_batch(records)

    assert [item.genres for item in result.items] == [["Drama"], ["Comedy"]]
    assert result.unknown_genres == {"Feel-Good Vibes": 2, "feel good": 1}
    assert result.rejected == []


@pytest.mark.parametrize("platform", ALL)
def test_records_without_id_or_title_are_rejected_and_the_batch_goes_on(platform: str) -> None:
    second = samples.set_id(samples.sample(platform), platform, "2")
    records = [
        samples.sample(platform),
        samples.set_id(samples.sample(platform), platform, None),
        samples.set_title(samples.sample(platform), platform, None),
        samples.set_id(samples.sample(platform), platform, "   "),
        samples.set_title(samples.sample(platform), platform, ""),
        second,
    ]

    result = get_normalizer(platform).normalize_batch(records)

    assert [item.source_id for item in result.items] == [SOURCE_IDS[platform], "2"]
    assert [(r.source_id, r.reason) for r in result.rejected] == [
        (None, "missing id"),
        (SOURCE_IDS[platform], "missing title"),
        (None, "missing id"),
        (SOURCE_IDS[platform], "missing title"),
    ]


@pytest.mark.parametrize("platform", ALL)
def test_normalize_raises_the_rejection_reason(platform: str) -> None:
    with pytest.raises(RecordRejected) as raised:
        normalize(platform, samples.set_title(samples.sample(platform), platform, None))
    assert raised.value.reason == "missing title"


@pytest.mark.parametrize("platform", ALL)
def test_values_of_the_wrong_kind_reject_only_their_record(platform: str) -> None:
    records: list[Any] = [
        ["not", "an", "object"],
        samples.set_title(samples.sample(platform), platform, {"text": "Avatar"}),
        samples.sample(platform),
    ]

    result = get_normalizer(platform).normalize_batch(records)

    assert len(result.items) == 1
    assert [r.reason for r in result.rejected] == ["not an object", "missing title"]


@pytest.mark.parametrize("platform", ALL)
def test_a_schema_violation_is_rejected_as_invalid(platform: str) -> None:
    # A four-letter "country" passes every shape's parsing but not the offer schema.
    broken = _with_region(platform, samples.sample(platform), "USAX")

    result = get_normalizer(platform).normalize_batch([broken])

    assert result.items == []
    assert [r.source_id for r in result.rejected] == [SOURCE_IDS[platform]]
    assert result.rejected[0].reason.startswith("invalid: region: String should match pattern")


def _with_region(platform: str, record: dict[str, Any], region: str) -> dict[str, Any]:
    if platform == "netflix":
        record["countries"][0]["country"] = region
    elif platform == "prime_video":
        record["marketplaces"][region] = record["marketplaces"].pop("US")
    elif platform == "disney_plus":
        record["availability"][0]["region"] = region
    elif platform == "hbo_max":
        record["availability"][0]["territory"] = region
    elif platform == "hulu":
        record["availability"][region] = record["availability"].pop("US")
    elif platform == "apple_tv_plus":
        record["storefronts"][region.lower()] = record["storefronts"].pop("us")
    elif platform == "paramount_plus":
        record["availability"][0]["country"] = region
    elif platform == "peacock":
        record["offers"][0]["territory"] = region
    elif platform == "youtube":
        record["offers"][0]["regionCode"] = region
    else:
        record["streamingOptions"][region.lower()] = record["streamingOptions"].pop("us")
    return record


def test_at_most_one_offer_per_region_and_monetization_is_kept() -> None:
    record = samples.sample("netflix")
    first = record["countries"][0]
    record["countries"].append({**first, "availableFrom": "2020-01-01", "plans": ["standard"]})

    content = normalize("netflix", record)

    us = [o for o in content.offers if o.region == "US"]
    assert len(us) == 1
    assert us[0].tier == "standard-with-ads"
    assert str(us[0].available_since) == "2024-05-01"


class _Exploding(PlatformNormalizer):
    """A normalizer with a bug, to show the batch survives faults that are not bad input."""

    platform = "exploding"

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        return str(raw.get("id")) if raw.get("id") is not None else None

    def genre_labels(self, raw: Mapping[str, Any]) -> list[str]:
        return []

    def convert(self, raw: Mapping[str, Any], source_id: str, genres: GenreMatch) -> NormalizedContent:
        if raw.get("explode"):
            raise RuntimeError("boom")
        return NormalizedContent(title=str(raw["title"]), source_platform=self.platform, source_id=source_id)


def test_a_fault_in_one_record_is_reported_and_the_batch_goes_on() -> None:
    result = _Exploding().normalize_batch(
        [{"id": 1, "title": "A"}, {"id": 2, "explode": True}, {"id": 3}, {"id": 4, "title": "D"}]
    )

    assert [i.source_id for i in result.items] == ["1", "4"]
    assert [(r.source_id, r.reason) for r in result.rejected] == [
        ("2", "error: RuntimeError: boom"),
        ("3", "malformed: KeyError: 'title'"),
    ]


def test_genre_tables_refuse_genres_outside_the_taxonomy() -> None:
    with pytest.raises(ValueError, match="non-canonical"):
        genre_table({"Space Opera": ("Space Opera",)})
    assert genre_table({"  Space   OPERA ": GenreRule(("Science Fiction",))}) == {
        "space opera": GenreRule(("Science Fiction",))
    }


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (fields.ident, 80117401, "80117401"),
        (fields.ident, True, None),
        (fields.integer, 161.6, 162),
        (fields.integer, "", None),
        (fields.iso_date, "2009-12-10T23:30:00-05:00", date(2009, 12, 11)),
        (fields.iso_date, "2009-12-10T23:30:00", date(2009, 12, 10)),
        (fields.epoch_date, 1260403200, date(2009, 12, 10)),
        (fields.quality, "1080p", "HD"),
        (fields.imdb_id, "tt123", None),
        (fields.eidr_id, "10.5240/b4d6-42a1-9d2c-51e5-7e5b-r", "10.5240/b4d6-42a1-9d2c-51e5-7e5b-r"),
        (fields.eidr_id, "10.5240/XYZ", None),
    ],
)
def test_field_coercions(helper: Any, value: Any, expected: Any) -> None:
    assert helper(value) == expected


@pytest.mark.parametrize(
    ("helper", "value"),
    [
        (fields.integer, True),
        (fields.number, False),
        (fields.decimal, "3.99 USD"),
        (fields.decimal, True),
        (fields.quality, "8K"),
        (fields.mapping, ["a"]),
        (fields.items, {"a": 1}),
    ],
)
def test_malformed_field_values_raise(helper: Any, value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each helper words its own message
        helper(value)

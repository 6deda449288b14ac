"""Stores' and the generic feed's own rules: offer kinds, prices, tiers, dates and links."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from media_gateway.catalog.schemas import ContentKind, DeepLinks, Monetization
from media_gateway.ingestion.normalizers import GenericNormalizer
from tests.ingestion import normalizer_samples as samples
from tests.ingestion.normalizer_samples import normalize, offers, rejection, summary

# Prime Video


def test_prime_video_record() -> None:
    content = normalize("prime_video", samples.sample("prime_video"))

    assert content.release_date == date(2009, 12, 10)
    assert [(c.name, c.character) for c in content.cast] == [
        ("Sam Worthington", "Jake Sully"),
        ("Zoe Saldana", "Neytiri"),
    ]
    assert content.directors == ["James Cameron"]  # the producer is not a director
    assert content.certifications == {"US": "13+", "DE": "12"}
    assert content.rating == 7.2
    assert ("eidr", "10.5240/B4D6-42A1-9D2C-51E5-7E5B-R") in {
        (e.id_type, e.value) for e in content.external_ids
    }
    by_key = offers(content)
    assert set(by_key) == {
        ("US", Monetization.SUBSCRIPTION),
        ("US", Monetization.RENT),
        ("US", Monetization.BUY),
        ("DE", Monetization.ADDON),
        ("DE", Monetization.ADS),
    }  # the PREORDER offer type is not one we know, so it is skipped
    assert summary(by_key["US", Monetization.SUBSCRIPTION]) == (
        "prime",
        None,
        None,
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["US", Monetization.RENT]) == (
        None,
        Decimal("3.99"),
        "USD",
        "HD",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["US", Monetization.BUY]) == (
        None,
        Decimal("19.99"),
        "USD",
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["DE", Monetization.ADDON]) == (
        "mgmplus",
        Decimal("7.99"),
        "EUR",
        "HD",
        date(2024, 7, 1),
        date(2025, 3, 1),
    )
    assert summary(by_key["DE", Monetization.ADS]) == ("freevee", None, None, "HD", None, None)


def test_prime_video_originals_and_genres() -> None:
    record = samples.with_genres(
        "prime_video", ["Amazon Originals", "Suspense", "Kids", "Music Videos and Concerts"]
    )
    content = normalize("prime_video", record)
    assert content.is_original
    assert content.genres == ["Thriller", "Family", "Music"]
    assert normalize("prime_video", samples.sample("prime_video") | {"isAmazonOriginal": True}).is_original
    assert (
        normalize("prime_video", samples.sample("prime_video") | {"contentType": "SERIES"}).kind
        is ContentKind.SERIES
    )


def test_prime_video_malformed_price_is_rejected() -> None:
    record = samples.sample("prime_video")
    record["marketplaces"]["US"]["offers"][1]["price"]["amountMinor"] = "3.99 USD"
    assert rejection("prime_video", record).startswith("malformed: ValueError")


# Apple TV+


def test_apple_tv_plus_record() -> None:
    content = normalize("apple_tv_plus", samples.sample("apple_tv_plus"))

    assert content.release_date == date(2009, 12, 10)
    assert content.certifications == {"US": "PG-13", "DE": "12"}
    by_key = offers(content)
    assert set(by_key) == {
        ("US", Monetization.SUBSCRIPTION),
        ("US", Monetization.RENT),
        ("DE", Monetization.BUY),
    }
    assert summary(by_key["US", Monetization.SUBSCRIPTION]) == (
        "premium",
        None,
        None,
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["US", Monetization.RENT]) == (
        None,
        Decimal("3.99"),
        "USD",
        "HD",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["DE", Monetization.BUY]) == (
        None,
        Decimal("13.99"),
        "EUR",
        "4K",
        date(2024, 6, 1),
        date(2025, 2, 1),
    )


def test_apple_tv_plus_subscription_tier_is_always_premium() -> None:
    record = samples.sample("apple_tv_plus")
    record["storefronts"]["gb"] = {"offers": [{"kind": "subscription", "videoQuality": "HD"}]}
    content = normalize("apple_tv_plus", record)
    assert {o.tier for o in content.offers if o.monetization is Monetization.SUBSCRIPTION} == {"premium"}


@pytest.mark.parametrize(
    ("formatted", "amount"),
    [
        ("$3.99", "3.99"),
        ("£4.49", "4.49"),
        ("CA$5.99", "5.99"),
        ("3,99 €", "3.99"),
        ("1,299.00 ¥", "1299.00"),
    ],
)
def test_apple_tv_plus_reads_storefront_prices(formatted: str, amount: str) -> None:
    record = samples.sample("apple_tv_plus")
    record["storefronts"]["us"]["offers"][1]["price"]["formatted"] = formatted
    assert offers(normalize("apple_tv_plus", record))["US", Monetization.RENT].price == Decimal(amount)


def test_apple_tv_plus_originals_and_bad_prices() -> None:
    assert normalize("apple_tv_plus", samples.sample("apple_tv_plus") | {"isAppleOriginal": True}).is_original
    assert normalize("apple_tv_plus", samples.with_genres("apple_tv_plus", ["Apple Originals"])).is_original
    record = samples.sample("apple_tv_plus")
    record["storefronts"]["us"]["offers"][1]["price"]["formatted"] = "free"
    assert rejection("apple_tv_plus", record) == "malformed: ValueError: no amount in 'free'"


# YouTube


def test_youtube_record() -> None:
    content = normalize("youtube", samples.sample("youtube"))

    assert content.certifications == {"US": "PG-13", "GB": "12A"}  # unknown rating values are skipped
    assert content.rating == 7.2
    by_key = offers(content)
    assert set(by_key) == {("US", Monetization.RENT), ("US", Monetization.BUY), ("GB", Monetization.ADS)}
    assert summary(by_key["US", Monetization.RENT]) == (
        None,
        Decimal("3.99"),
        "USD",
        "HD",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["US", Monetization.BUY]) == (
        None,
        Decimal("19.99"),
        "USD",
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(by_key["GB", Monetization.ADS]) == (None, None, None, "HD", date(2024, 6, 1), None)


@pytest.mark.parametrize(
    ("duration", "minutes"), [("PT2H42M", 162), ("PT95M", 95), ("PT1H", 60), ("PT5400S", 90)]
)
def test_youtube_durations(duration: str, minutes: int) -> None:
    record = samples.sample("youtube")
    record["contentDetails"]["duration"] = duration
    assert normalize("youtube", record).runtime_minutes == minutes


def test_youtube_bad_duration_and_originals() -> None:
    record = samples.sample("youtube")
    record["contentDetails"]["duration"] = "2:42:00"
    assert rejection("youtube", record) == "malformed: ValueError: not an ISO 8601 duration: '2:42:00'"
    assert normalize("youtube", samples.with_genres("youtube", ["YouTube Originals"])).is_original


# Generic (any other platform)


def test_generic_record() -> None:
    content = normalize("tubi", samples.sample("tubi"))

    assert content.certifications == {"US": "PG-13"}
    assert (content.rating, content.vote_count) == (7.2, 11800)
    assert content.genres == ["Action", "Science Fiction"]
    by_key = offers(content)
    assert set(by_key) == {("US", Monetization.ADS), ("CA", Monetization.FREE)}  # pluto's option is not ours
    assert by_key["US", Monetization.ADS].deep_links == DeepLinks(
        app="tubitv://media-playback?video_id=824671347", web="https://tubitv.com/movies/824671347"
    )
    assert summary(by_key["US", Monetization.ADS]) == (
        None,
        None,
        None,
        "HD",
        date(2024, 5, 1),
        date(2024, 12, 31),
    )
    assert by_key["CA", Monetization.FREE].deep_links == DeepLinks()


def test_generic_addons_prices_and_unknown_option_types() -> None:
    record = samples.sample("tubi")
    record["streamingOptions"] = {
        "gb": [
            {"type": "addon", "addon": {"id": "tubi_plus"}, "price": {"amount": "4.99", "currency": "gbp"}},
            {"type": "rent", "price": {"amount": 2.5, "currency": "GBP"}},
            {"type": "lease"},
        ]
    }
    by_key = offers(normalize("tubi", record))
    assert set(by_key) == {("GB", Monetization.ADDON), ("GB", Monetization.RENT)}
    assert (by_key["GB", Monetization.ADDON].tier, by_key["GB", Monetization.ADDON].price) == (
        "tubi_plus",
        Decimal("4.99"),
    )
    assert by_key["GB", Monetization.ADDON].currency == "GBP"
    assert by_key["GB", Monetization.RENT].price == Decimal("2.5")


def test_generic_for_a_platform_with_link_templates_fills_the_missing_links() -> None:
    record = samples.sample("tubi")
    record["streamingOptions"] = {"us": [{"service": {"id": "netflix"}, "type": "subscription"}]}
    (offer,) = GenericNormalizer("netflix").normalize(record).offers
    assert offer.deep_links == DeepLinks(
        app="netflix://title/824671347", web="https://www.netflix.com/title/824671347"
    )


def test_generic_ids_and_series() -> None:
    record = samples.sample("tubi") | {
        "imdbId": "0499549",
        "tmdbId": "tv/abc",
        "showType": "series",
        "id": 42,
    }
    content = normalize("tubi", record)
    assert content.kind is ContentKind.SERIES
    assert [(e.id_type, e.value) for e in content.external_ids] == [("platform:tubi", "42")]

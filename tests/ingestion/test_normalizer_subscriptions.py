"""Subscription services' own rules: tiers, dates, certifications, originals and brand labels."""

from __future__ import annotations

from datetime import date

import pytest

from media_gateway.catalog.schemas import ContentKind, Monetization
from tests.ingestion import normalizer_samples as samples
from tests.ingestion.normalizer_samples import normalize, offers, rejection, summary

# Netflix


def test_netflix_record() -> None:
    content = normalize("netflix", samples.sample("netflix"))

    assert content.genres == ["Action", "Adventure", "Science Fiction", "Fantasy"]
    assert content.keywords == ["Visually Striking", "Exciting"]
    assert content.certifications == {"US": "PG-13", "GB": "12"}
    assert (content.rating, content.vote_count, content.popularity) == (7.2, 11800, 150.4)
    assert content.images == {"poster": "https://art.example/avatar.jpg"}
    assert content.release_date is None  # only the year is published
    assert summary(offers(content)["US", Monetization.SUBSCRIPTION]) == (
        "standard-with-ads",
        None,
        None,
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(offers(content)["GB", Monetization.SUBSCRIPTION]) == (
        "standard",
        None,
        None,
        "HD",
        date(2024, 6, 1),
        date(2025, 1, 31),
    )


def test_netflix_originals_come_from_the_flag_or_the_label() -> None:
    flagged = samples.sample("netflix") | {"netflixOriginal": True}
    labelled = samples.with_genres("netflix", ["Netflix Originals", "Dramas"])
    assert normalize("netflix", flagged).is_original
    assert normalize("netflix", labelled).is_original
    assert normalize("netflix", labelled).genres == ["Drama"]


def test_netflix_shows_and_bad_values() -> None:
    assert normalize("netflix", samples.sample("netflix") | {"type": "show"}).kind is ContentKind.SERIES
    assert (
        rejection("netflix", samples.sample("netflix") | {"type": "podcast"})
        == "malformed: KeyError: 'podcast'"
    )
    broken = samples.sample("netflix")
    broken["countries"][0]["availableFrom"] = "05/01/2024"
    assert rejection("netflix", broken).startswith("malformed: ValueError")
    assert rejection("netflix", samples.sample("netflix") | {"countries": {"US": {}}}).startswith("malformed")


# Disney+


def test_disney_plus_record() -> None:
    content = normalize("disney_plus", samples.sample("disney_plus"))

    assert content.release_date == date(2009, 12, 10)
    assert content.keywords == ["alien"]  # mood tags are not keywords
    assert [(c.name, c.character, c.order) for c in content.cast] == [
        ("Sam Worthington", "Jake Sully", 0),
        ("Zoe Saldana", "Neytiri", 1),
    ]
    assert content.certifications == {"US": "PG-13", "GB": "12"}
    assert (content.rating, content.vote_count, content.popularity) == (7.2, 11800, 150.4)
    assert summary(offers(content)["US", Monetization.SUBSCRIPTION]) == (
        "basic",
        None,
        None,
        "4K",
        date(2019, 11, 12),
        None,
    )
    assert summary(offers(content)["CA", Monetization.SUBSCRIPTION]) == (
        "premium",
        None,
        None,
        "HD",
        date(2020, 1, 5),
        date(2025, 2, 1),
    )


def test_disney_plus_originals_and_genres() -> None:
    assert normalize("disney_plus", samples.with_genres("disney_plus", ["Disney+ Originals"])).is_original
    record = samples.sample("disney_plus")
    record["family"]["isDisneyPlusOriginal"] = True
    assert normalize("disney_plus", record).is_original
    content = normalize(
        "disney_plus", samples.with_genres("disney_plus", ["Superhero", "Animals & Nature", "Kids"])
    )
    assert content.genres == ["Action", "Documentary", "Family"]


# HBO Max


@pytest.mark.parametrize(
    ("entitlement", "tier"),
    [("ads", "ad-supported"), ("adfree", "ad-free"), ("ultimate", "ad-free"), (None, "ad-free")],
)
def test_hbo_max_tiers(entitlement: str | None, tier: str) -> None:
    record = samples.sample("hbo_max")
    record["availability"][0]["entitlement"] = entitlement
    assert offers(normalize("hbo_max", record))["US", Monetization.SUBSCRIPTION].tier == tier


def test_hbo_max_record() -> None:
    content = normalize("hbo_max", samples.sample("hbo_max"))

    assert content.release_date == date(2009, 12, 10)
    assert content.genres == ["Action", "Science Fiction", "Fantasy"]
    assert content.certifications == {"US": "PG-13"}
    assert summary(offers(content)["US", Monetization.SUBSCRIPTION]) == (
        "ad-supported",
        None,
        None,
        "4K",
        date(2024, 5, 1),
        None,
    )
    assert summary(offers(content)["ES", Monetization.SUBSCRIPTION]) == (
        "ad-free",
        None,
        None,
        "HD",
        date(2024, 6, 1),
        date(2025, 2, 1),
    )


def test_hbo_max_originals() -> None:
    record = samples.sample("hbo_max")
    record["attributes"]["badges"] = ["max-original"]
    assert normalize("hbo_max", record).is_original
    assert normalize("hbo_max", samples.with_genres("hbo_max", ["HBO Originals"])).is_original
    assert not normalize("hbo_max", samples.sample("hbo_max")).is_original


# Hulu


@pytest.mark.parametrize(
    ("package", "tier"),
    [("ads", "ad-supported"), ("live_tv", "live-tv"), ("no_ads", "ad-free"), (None, "ad-free")],
)
def test_hulu_tiers(package: str | None, tier: str) -> None:
    record = samples.sample("hulu")
    record["availability"]["US"]["package"] = package
    assert offers(normalize("hulu", record))["US", Monetization.SUBSCRIPTION].tier == tier


def test_hulu_record() -> None:
    content = normalize("hulu", samples.sample("hulu"))

    assert content.release_date == date(2009, 12, 10)
    assert content.certifications == {"US": "PG-13"}
    assert [(c.name, c.character) for c in content.cast] == [
        ("Sam Worthington", "Jake Sully"),
        ("Zoe Saldana", "Neytiri"),
    ]
    assert (content.rating, content.popularity) == (7.2, 150.4)
    assert summary(offers(content)["US", Monetization.SUBSCRIPTION]) == (
        "ad-supported",
        None,
        None,
        "HD",
        date(2024, 5, 1),
        date(2024, 12, 31),
    )


def test_hulu_originals_are_drama_and_original() -> None:
    content = normalize("hulu", samples.with_genres("hulu", ["Hulu Originals"]))
    assert content.genres == ["Drama"]
    assert content.is_original
    assert not normalize("hulu", samples.sample("hulu")).is_original


def test_hulu_bad_dates_and_durations_are_rejected() -> None:
    assert rejection("hulu", samples.sample("hulu") | {"premiere_date": "2009-12-10"}).startswith("malformed")
    assert rejection("hulu", samples.sample("hulu") | {"duration": "2h42"}).startswith("malformed")
    assert rejection("hulu", samples.sample("hulu") | {"duration": "1:2:3:4"}).startswith("malformed")
    assert normalize("hulu", samples.sample("hulu") | {"duration": "162:00"}).runtime_minutes == 162


# Paramount+


@pytest.mark.parametrize(
    ("package", "tier"),
    [("showtime", "showtime"), ("ads", "essential"), ("commercial_free", "premium"), (None, "premium")],
)
def test_paramount_plus_tiers(package: str | None, tier: str) -> None:
    record = samples.sample("paramount_plus")
    record["availability"][0]["package"] = package
    assert offers(normalize("paramount_plus", record))["US", Monetization.SUBSCRIPTION].tier == tier


def test_paramount_plus_record() -> None:
    content = normalize("paramount_plus", samples.sample("paramount_plus"))

    assert content.release_date == date(2009, 12, 10)
    assert content.genres == ["Science Fiction", "Action", "Adventure"]
    assert content.certifications == {"US": "PG-13", "CA": "PG"}
    assert content.rating == 7.2
    assert summary(offers(content)["CA", Monetization.SUBSCRIPTION]) == (
        "premium",
        None,
        None,
        "4K",
        date(2024, 6, 1),
        date(2025, 1, 31),
    )


def test_paramount_plus_brand_labels() -> None:
    trek = normalize("paramount_plus", samples.with_genres("paramount_plus", ["Star Trek"]))
    nick = normalize("paramount_plus", samples.with_genres("paramount_plus", ["Nickelodeon"]))
    own = normalize(
        "paramount_plus", samples.with_genres("paramount_plus", ["Drama", "Paramount+ Originals"])
    )
    assert trek.genres == ["Science Fiction"]
    assert nick.genres == ["Family", "Animation"]
    assert (own.genres, own.is_original, trek.is_original) == (["Drama"], True, False)


# Peacock


@pytest.mark.parametrize(
    ("entitlement", "tier", "monetization"),
    [
        ("premiumPlus", "premium-plus", Monetization.SUBSCRIPTION),
        ("premium", "premium", Monetization.SUBSCRIPTION),
        ("free", "free", Monetization.ADS),
        (None, "premium", Monetization.SUBSCRIPTION),
        ("platinum", "premium", Monetization.SUBSCRIPTION),
    ],
)
def test_peacock_tiers(entitlement: str | None, tier: str, monetization: Monetization) -> None:
    record = samples.sample("peacock")
    record["offers"][0]["entitlement"] = entitlement
    (offer,) = normalize("peacock", record).offers
    assert (offer.tier, offer.monetization) == (tier, monetization)


def test_peacock_record() -> None:
    content = normalize("peacock", samples.sample("peacock"))

    assert content.certifications == {"US": "PG-13"}
    assert [c.name for c in content.cast] == ["Sam Worthington", "Zoe Saldana"]
    (offer,) = content.offers
    # 23:00 at UTC-5 on 31 December is already 1 January in UTC.
    assert summary(offer) == ("premium-plus", None, None, "4K", date(2024, 5, 1), date(2025, 1, 1))


def test_peacock_originals() -> None:
    assert normalize("peacock", samples.with_genres("peacock", ["Peacock Originals", "Bravo"])).is_original
    assert normalize("peacock", samples.with_genres("peacock", ["Bravo"])).genres == ["Reality"]

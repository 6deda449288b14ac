"""The age-rating ladder behind `max_certification` and the profile/request combination."""

from __future__ import annotations

from media_gateway.discovery.clients import UserProfile
from media_gateway.discovery.search.certification import LADDER, certification_age
from media_gateway.discovery.search_schemas import SearchFilters, SearchRequest
from media_gateway.discovery.search_service import my_services_request, stricter_certification


def test_ratings_of_every_kind_land_on_one_ladder() -> None:
    ages = [certification_age(r) for r in LADDER]
    known = [a for a in ages if a is not None]
    assert known == ages
    assert known == sorted(known)
    assert certification_age("G") == certification_age("TV-G") == certification_age("TV-Y7")
    assert certification_age("PG-13") == certification_age("tv-14")
    assert certification_age("R") == certification_age("TV-MA") < certification_age("NC-17")  # type: ignore[operator]
    assert certification_age("FSK 16") == 16
    assert certification_age("12+") == 12
    assert certification_age("15") == 15
    for unknown in (None, "", "NR", "Unrated", "M"):
        assert certification_age(unknown) is None


def test_the_stricter_maximum_wins_and_profile_ratings_map_onto_the_ladder() -> None:
    assert stricter_certification(None, None) is None
    assert stricter_certification("R", None) == "R"
    assert stricter_certification(None, "PG") == "PG"
    assert stricter_certification("R", "PG") == "PG"
    assert stricter_certification("G", "PG-13") == "G"
    assert stricter_certification(None, "FSK 12") == "PG"
    assert stricter_certification("PG-13", "Unrated") == "PG-13"


def test_only_my_services_becomes_an_ordinary_cacheable_request() -> None:
    request = SearchRequest(
        query="space", filters=SearchFilters(platforms=["netflix", "hulu"], only_my_services=True)
    )
    profile = UserProfile(platforms=["Netflix", "tubi", "myspace"], region="gb", max_certification="PG-13")
    mine = my_services_request(request, profile)
    assert mine is not None
    assert mine.filters.platforms == ["netflix"]
    assert mine.filters.only_my_services is False
    assert mine.filters.max_certification == "PG-13"
    assert mine.region == "GB"
    assert my_services_request(request, UserProfile(platforms=["tubi"])) is None
    assert my_services_request(request, UserProfile(platforms=[])) is None

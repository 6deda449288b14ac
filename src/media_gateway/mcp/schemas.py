"""What the MCP tools return: short, structured answers an assistant can read and act on.

Each model becomes a tool's output schema, so field descriptions are written for the model reading
them. Ids are the catalog's content ids, the handle every other tool takes."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field


class WhereToWatch(BaseModel):
    platform: str = Field(description="Platform id, e.g. netflix, prime_video, disney_plus.")
    monetization: str = Field(description="subscription, free, ads, rent, buy or addon.")
    price: float | None = Field(default=None, description="Price to rent or buy; null when included.")
    currency: str | None = None
    quality: str | None = Field(default=None, description="SD, HD or 4K.")
    link: str | None = Field(default=None, description="Deep link that opens the title on the platform.")


class TitleCard(BaseModel):
    content_id: str = Field(description="Catalog id: pass it to get_title, add_to_watchlist, similar_titles.")
    title: str
    year: int | None = None
    kind: str | None = Field(default=None, description="movie, series, ...")
    genres: list[str] = []
    rating: float | None = Field(default=None, description="Audience rating, 0 to 10.")
    runtime_minutes: int | None = None
    where_to_watch: list[WhereToWatch] = Field(
        default=[], description="Ways to watch it today in the region, cheapest first (a few at most)."
    )


class SearchResults(BaseModel):
    query: str
    region: str
    total: int = Field(description="Matching titles in all; `results` holds the best of them.")
    personalized: bool = Field(description="Whether the signed-in user's tastes re-ranked the results.")
    results: list[TitleCard]


class TitleDetails(TitleCard):
    original_title: str | None = None
    overview: str | None = None
    directors: list[str] = []
    cast: list[str] = Field(default=[], description="Top-billed cast.")
    certification: str | None = Field(default=None, description="Age rating in the region, if known.")
    region: str
    watchable_now: bool = Field(description="Whether any platform offers it today in the region.")


class RecommendedTitle(TitleCard):
    why: str = Field(description="Why it was picked, in a sentence.")


class Recommendations(BaseModel):
    region: str | None = None
    personalized: bool = Field(
        description="False while too little is known about the user (picks are popular titles)."
    )
    recommendations: list[RecommendedTitle]


class SimilarTitles(BaseModel):
    content_id: str
    similar: list[RecommendedTitle]


class WatchlistEntry(BaseModel):
    content_id: str
    title: str | None = Field(default=None, description="Null if the catalog no longer has the title.")
    year: int | None = None
    kind: str | None = None
    added_at: dt.datetime | None = None


class Watchlist(BaseModel):
    count: int = Field(description="Titles on the watchlist in all.")
    items: list[WatchlistEntry] = Field(description="Most recently added first.")


class WatchlistChange(BaseModel):
    content_id: str
    title: str | None = None
    in_watchlist: bool = Field(description="Whether the title is on the watchlist now.")


class ResumeLink(BaseModel):
    platform: str
    link: str | None = Field(default=None, description="Opens the title; seek to `position_seconds` there.")


class InProgressTitle(BaseModel):
    content_id: str
    title: str
    year: int | None = None
    kind: str | None = None
    position_seconds: float = Field(description="Where the user stopped.")
    duration_seconds: float | None = None
    percent_watched: float | None = None
    last_watched_at: dt.datetime
    resume: ResumeLink | None = None


class ContinueWatching(BaseModel):
    items: list[InProgressTitle] = Field(description="Started and not finished, most recent first.")

"""Request and response models of the SONA API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from media_gateway.sona.signals import InteractionKind

Region = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]
Platform = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{1,30}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]

TimeOfDay = Literal["morning", "afternoon", "evening", "late_night", "night"]
DeviceType = Literal["tv", "mobile", "phone", "tablet", "desktop", "web"]
Mood = Literal[
    "happy", "relaxed", "thrilled", "scared", "romantic", "thoughtful", "sad", "adventurous", "curious"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- recommendations -------------------------------------------------------------------------------


class RecommendationContext(Strict):
    time_of_day: TimeOfDay | None = None
    device_type: DeviceType | None = None
    mood: Mood | None = None


class RecommendationRequest(Strict):
    limit: int = Field(default=20, ge=1, le=100)
    region: Region | None = None
    platforms: list[Platform] | None = Field(default=None, min_length=1, max_length=20)
    context: RecommendationContext | None = None
    exclude_watched: bool = True


class OfferSummary(BaseModel):
    platform: str
    monetization: str
    quality: str | None
    price: float | None
    currency: str | None
    deep_link: str | None = Field(description="The web deep link, when known.")


class ContentSummary(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    year: int | None
    genres: list[str]
    runtime_minutes: int | None
    rating: float | None
    popularity: float | None
    certification: str | None
    poster: str | None
    directors: list[str]
    region: str
    offers: list[OfferSummary] = Field(description="Offers watchable today in `region`.")


class ExperimentRef(BaseModel):
    id: uuid.UUID
    key: str
    variant: str


class Recommendation(BaseModel):
    content: ContentSummary
    score: float
    sources: list[str] = Field(description="The sources that proposed the title, strongest first.")
    explanation: str


class RecommendationResponse(BaseModel):
    recommendations: list[Recommendation]
    generated_at: dt.datetime
    ttl_seconds: int
    cold_start: bool
    experiment: ExperimentRef | None = None


class SimilarItem(BaseModel):
    content: ContentSummary
    score: float
    sources: list[str]
    explanation: str


class SimilarResponse(BaseModel):
    content_id: uuid.UUID
    similar: list[SimilarItem]


# --- personalization score (the contract with discovery) -------------------------------------------


class ScoreRequest(Strict):
    content_ids: list[uuid.UUID] = Field(min_length=1, max_length=500)


class ScoreComponents(BaseModel):
    collaborative: float
    content: float
    graph: float


class ScoreExperiment(BaseModel):
    id: str
    variant: str


class ScoreResponse(BaseModel):
    scores: dict[str, float]
    components: dict[str, ScoreComponents]
    weight: float | None
    experiment: ScoreExperiment | None


# --- events ----------------------------------------------------------------------------------------


class EventIn(Strict):
    """One viewing event from an app. `event_id` makes a resend harmless."""

    event_id: uuid.UUID
    type: InteractionKind
    content_id: uuid.UUID
    occurred_at: AwareDatetime | None = None
    completion: float | None = Field(default=None, ge=0, le=1)
    position_seconds: float | None = Field(default=None, ge=0)
    duration_seconds: float | None = Field(default=None, gt=0)
    rating: int | None = Field(default=None, ge=1, le=5)

    @model_validator(mode="after")
    def _fields_fit_the_type(self) -> EventIn:
        if self.type == "rated" and self.rating is None:
            raise ValueError("a 'rated' event needs a rating from 1 to 5")
        if self.type != "rated" and self.rating is not None:
            raise ValueError("only a 'rated' event carries a rating")
        if (
            self.type == "progress"
            and self.completion is None
            and (self.position_seconds is None or self.duration_seconds is None)
        ):
            raise ValueError("a 'progress' event needs completion, or position_seconds and duration_seconds")
        position, duration = self.position_seconds, self.duration_seconds
        if position is not None and duration is not None and position > duration * 1.05:
            raise ValueError("position_seconds is past duration_seconds")
        return self


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=500)


class EventBatchResult(BaseModel):
    accepted: int = Field(description="Events recorded now.")
    duplicates: int = Field(description="Events already recorded earlier (same event_id); ignored.")


# --- profile ---------------------------------------------------------------------------------------


class Affinity(BaseModel):
    name: str
    score: float


class AdapterInfo(BaseModel):
    id: uuid.UUID
    version: int
    rank: int
    alpha: float
    trained_at: dt.datetime
    metrics: dict[str, Any]


class ColdStartState(BaseModel):
    cold_start: bool
    interactions: int = Field(description="Titles the user engaged with.")
    threshold: int = Field(description="Users with at most this many interactions are in cold start.")


class ProfileResponse(BaseModel):
    user_id: uuid.UUID
    genre_affinities: list[Affinity]
    top_people: list[Affinity]
    interaction_counts: dict[str, int]
    titles: int
    cold_start: ColdStartState
    adapter: AdapterInfo | None


# --- embeddings ------------------------------------------------------------------------------------


class EmbeddingRequest(Strict):
    texts: list[Annotated[str, StringConstraints(min_length=1, max_length=4000)]] = Field(
        min_length=1, max_length=64
    )
    adapter: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="'personal' (your active LoRA adapter) or an adapter id of yours."
    )


class EmbeddingResponse(BaseModel):
    model: str
    dimension: int
    adapter: AdapterInfo | None
    vectors: list[list[float]]


# --- experiments -----------------------------------------------------------------------------------

ExperimentStatus = Literal["draft", "running", "paused", "completed"]


class VariantIn(Strict):
    name: Name
    weight: float = Field(default=1.0, gt=0, le=1000)
    config: dict[str, Any] = {}


class ExperimentCreate(Strict):
    key: Name
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    traffic_allocation: float = Field(default=1.0, ge=0, le=1)
    variants: list[VariantIn] = Field(min_length=2, max_length=20)
    control: Name | None = Field(
        default=None, description="The control variant; default 'control' or the first."
    )

    @model_validator(mode="after")
    def _variants_are_distinct(self) -> ExperimentCreate:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if self.control is not None and self.control not in names:
            raise ValueError("control must name one of the variants")
        return self


class Variant(BaseModel):
    name: str
    weight: float
    config: dict[str, Any]
    control: bool


class Experiment(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    status: ExperimentStatus
    traffic_allocation: float
    variants: list[Variant]
    created_at: dt.datetime
    updated_at: dt.datetime


class ExperimentList(BaseModel):
    experiments: list[Experiment]


class StatusChange(Strict):
    status: ExperimentStatus


class Assignment(BaseModel):
    experiment_id: uuid.UUID
    key: str
    status: ExperimentStatus
    in_experiment: bool = Field(description="False when traffic allocation leaves the user out.")
    variant: str | None
    config: dict[str, Any] | None


class ConversionIn(Strict):
    value: float = Field(default=1.0, ge=-1e9, le=1e9)
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class ConversionResult(BaseModel):
    recorded: bool = Field(description="False when the idempotency key was already used.")
    variant: str


class VariantMetrics(BaseModel):
    variant: str
    control: bool
    exposures: int
    conversions: int = Field(description="Exposed users who converted at least once.")
    conversion_events: int
    rate: float = Field(description="conversions / exposures.")
    mean_value: float = Field(description="Mean value per conversion event.")
    difference: float | None = Field(description="rate - the control's rate.")
    relative_lift: float | None
    z: float | None
    p_value: float | None = Field(description="Two-sided two-proportion z-test against the control.")


class ExperimentMetrics(BaseModel):
    experiment_id: uuid.UUID
    status: ExperimentStatus
    control: str
    variants: list[VariantMetrics]


# --- admin -----------------------------------------------------------------------------------------


class TrainingReport(BaseModel):
    trained: bool
    reason: str
    snapshot_version: int | None
    interactions: int
    users: int
    items: int
    content_edges: int
    coview_edges: int
    adapters_trained: int
    seconds: dict[str, float]

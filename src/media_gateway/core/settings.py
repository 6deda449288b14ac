"""One settings tree for every service: environment variables prefixed `MG_`, nested with `__`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["gateway", "discovery", "sona", "auth", "sync", "ingestion", "playback", "mcp"]

SERVICE_NAMES: tuple[ServiceName, ...] = (
    "gateway",
    "discovery",
    "sona",
    "auth",
    "sync",
    "ingestion",
    "playback",
    "mcp",
)

DEFAULT_PORTS: dict[ServiceName, int] = {
    "gateway": 8080,
    "discovery": 8081,
    "sona": 8082,
    "auth": 8083,
    "sync": 8084,
    "ingestion": 8085,
    "playback": 8086,
    "mcp": 3000,
}


def _default_data_dir() -> Path:
    # Root's home is usually 0700, and the embedded PostgreSQL runs as an unprivileged user that
    # must reach its data dir, so root gets a system-wide location instead of ~/.local/share.
    if os.geteuid() == 0:
        return Path("/var/lib/media-gateway")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "media-gateway"


class ServicePorts(BaseModel):
    gateway: int = DEFAULT_PORTS["gateway"]
    discovery: int = DEFAULT_PORTS["discovery"]
    sona: int = DEFAULT_PORTS["sona"]
    auth: int = DEFAULT_PORTS["auth"]
    sync: int = DEFAULT_PORTS["sync"]
    ingestion: int = DEFAULT_PORTS["ingestion"]
    playback: int = DEFAULT_PORTS["playback"]
    mcp: int = DEFAULT_PORTS["mcp"]

    def of(self, service: ServiceName) -> int:
        port: int = getattr(self, service)
        return port


class ServiceUrls(BaseModel):
    """Where each service is reached from the others. Unset entries default to the local port."""

    gateway: str | None = None
    discovery: str | None = None
    sona: str | None = None
    auth: str | None = None
    sync: str | None = None
    ingestion: str | None = None
    playback: str | None = None
    mcp: str | None = None


class EmbeddedSettings(BaseModel):
    """The bundled PostgreSQL and Valkey that `up` starts when no URLs are configured."""

    postgres_port: int = 54329
    redis_port: int = 63799
    # PostgreSQL refuses to run as root; when we are root it runs as this user.
    postgres_user: str = "nobody"
    startup_timeout_sec: float = 30.0


class DatabaseSettings(BaseModel):
    pool_size: int = 5
    max_overflow: int = 5
    pool_timeout_sec: float = 5.0
    statement_timeout_ms: int = 15_000
    echo: bool = False


class RedisSettings(BaseModel):
    # Every key is `<prefix>:<service>:...`; tests give each run its own prefix.
    prefix: str = "mg"
    socket_timeout_sec: float = 5.0
    max_connections: int = 50


class HttpClientSettings(BaseModel):
    connect_timeout_sec: float = 2.0
    read_timeout_sec: float = 10.0
    retries: int = 2
    backoff_base_sec: float = 0.05
    backoff_max_sec: float = 1.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_sec: float = 10.0


class EventSettings(BaseModel):
    backend: Literal["redis", "kafka"] = "redis"
    topic_prefix: str = "media-gateway"
    # Redis: a message unacked this long is handed to another consumer of the group.
    redelivery_idle_ms: int = 30_000
    max_stream_length: int = 100_000
    # Kafka: comma-separated host:port list.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Consumers add their own name to it, so the broker shows who holds which partition.
    kafka_client_id: str = "media-gateway"
    # A consumer silent this long is dropped from its group and its partitions (with whatever it
    # left unacked) go to the others.
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    # Must exceed the session timeout: a group join can take that long to answer.
    kafka_request_timeout_ms: int = 30_000
    # Used only when the bus creates a topic. Partitions bound how many consumers of one group
    # work in parallel; one keeps a single total order like a Redis stream.
    kafka_num_partitions: int = 1
    kafka_replication_factor: int = 1


class EmbedderSettings(BaseModel):
    backend: Literal["onnx", "openai"] = "onnx"
    # The OpenAI-compatible embeddings API (used when backend == "openai").
    url: str = "https://api.openai.com/v1"
    model: str = "text-embedding-3-small"
    api_key: str = ""
    dimension: int = 1536
    timeout_sec: float = 10.0
    # The local ONNX model.
    onnx_threads: int = 2
    # all-MiniLM-L6-v2 was trained on 128 word pieces; longer inputs cost time and add little.
    max_tokens: int = 128
    # Measured faster than 32 on 2 cores for catalog texts (less padding per batch).
    batch_size: int = 16


class VectorSettings(BaseModel):
    backend: Literal["edge"] = "edge"
    collection: str = "content"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    full_scan_threshold: int = 10_000


class IngestionSettings(BaseModel):
    """Catalog sources (file feeds, the availability aggregator API) and platform webhooks."""

    # Records per RawBatch handed to the pipeline (file feeds); RawBatch itself caps at 10,000.
    batch_size: int = Field(default=500, ge=1, le=10_000)
    # Streaming-Availability-style aggregator; an empty URL means the source is not configured.
    aggregator_url: str = ""
    aggregator_api_key: SecretStr = SecretStr("")
    aggregator_countries: list[str] = ["US"]
    # Client-side token bucket: the provider bills and throttles per key, so we stay under its quota
    # instead of discovering it through 429s.
    aggregator_rate_per_sec: float = Field(default=5.0, gt=0)
    aggregator_burst: int = Field(default=1, ge=1)
    aggregator_page_size: int = Field(default=100, ge=1, le=10_000)
    aggregator_timeout_sec: float = Field(default=15.0, gt=0)
    aggregator_retries: int = Field(default=3, ge=0)
    # 429s are answered by waiting Retry-After; past this many in a row, or a longer wait than the
    # cap, the run stops (it resumes from the committed cursor next time).
    aggregator_max_throttled: int = Field(default=5, ge=0)
    aggregator_max_retry_after_sec: float = Field(default=120.0, ge=0)
    # Platform name -> shared HMAC secret; a platform without one has no webhook endpoint.
    webhook_secrets: dict[str, SecretStr] = {}
    webhook_tolerance_sec: int = Field(default=300, ge=1)
    webhook_dedup_ttl_sec: int = Field(default=86_400, ge=1)
    # How long a delivery stays claimed while it is being processed; a crashed worker's claim
    # expires after this, so the sender's retry is not refused forever.
    webhook_processing_ttl_sec: int = Field(default=120, ge=1)
    webhook_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1)
    # `up` loads the demo catalog through the ingestion API; a no-op once its feeds are consumed.
    demo_on_start: bool = True
    # How many TMDB titles the demo catalog takes (0: all 4,803); a small demo starts faster.
    demo_titles: int = Field(default=0, ge=0)
    # Texts per embedding call from the pipeline and enrichment.
    embed_batch_size: int = Field(default=100, ge=1, le=2048)
    # Enrichment re-embeds content whose vector is missing or older than this.
    enrichment_max_age_days: float = Field(default=7.0, gt=0)
    enrichment_batch_size: int = Field(default=100, ge=1, le=10_000)
    # Seconds between scheduled enrichment runs; 0 turns the schedule off.
    enrichment_interval_sec: float = Field(default=86_400.0, ge=0)


class LlmSettings(BaseModel):
    """An OpenAI-compatible chat-completions model; with no URL, features use their offline rules."""

    url: str = ""
    model: str = "gpt-4o-mini"
    api_key: SecretStr = SecretStr("")
    timeout_sec: float = Field(default=2.0, gt=0)


class DiscoverySettings(BaseModel):
    # Parsed intents from the LLM are cached this long, and only when confident enough.
    intent_ttl_sec: int = Field(default=600, ge=1)
    intent_cache_min_confidence: float = Field(default=0.7, ge=0, le=1)
    search_cache_ttl_sec: int = Field(default=300, ge=1)
    # Reciprocal rank fusion: score = sum(weight / (rrf_k + rank)).
    rrf_k: int = Field(default=60, ge=1)
    keyword_weight: float = Field(default=1.0, ge=0)
    semantic_weight: float = Field(default=1.0, ge=0)
    # final = (1 - w) * relevance + w * affinity, before the user's A/B variant overrides w.
    personalization_weight: float = Field(default=0.25, ge=0, le=1)
    personalization_budget_ms: int = Field(default=50, ge=1)
    default_region: str = "US"


class AuthSettings(BaseModel):
    # The `iss` of every access token; empty means the auth service's own URL.
    issuer: str = ""
    audience: str = "media-gateway"
    # Where every service fetches the signing keys; empty means {auth}/.well-known/jwks.json.
    jwks_url: str = ""
    jwks_cache_ttl_sec: float = Field(default=300.0, gt=0)
    # A token signed with a key we have not seen yet triggers a refetch, at most this often.
    jwks_refetch_min_interval_sec: float = Field(default=10.0, ge=0)
    leeway_sec: int = Field(default=60, ge=0)
    algorithms: list[Literal["RS256", "EdDSA"]] = ["RS256", "EdDSA"]
    access_token_ttl_sec: int = Field(default=3600, ge=60)


class SonaSettings(BaseModel):
    # Users with at most this many interactions get the cold-start recommender.
    cold_start_max_interactions: int = Field(default=5, ge=0)


class SyncSettings(BaseModel):
    # A progress report at or above this fraction of the runtime marks the title watched.
    completion_threshold: float = Field(default=0.95, gt=0, le=1)
    device_online_sec: int = Field(default=60, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MG_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    log_json: bool = True
    host: str = "127.0.0.1"
    data_dir: Path = Field(default_factory=_default_data_dir)
    # Unset: `up` starts the embedded servers and points these at them.
    database_url: str | None = None
    redis_url: str | None = None
    # Bearer token for operator endpoints; `up` makes one in the data dir when unset.
    admin_token: str = Field(default="", repr=False)

    ports: ServicePorts = ServicePorts()
    service_urls: ServiceUrls = ServiceUrls()
    embedded: EmbeddedSettings = EmbeddedSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    http: HttpClientSettings = HttpClientSettings()
    events: EventSettings = EventSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    vectors: VectorSettings = VectorSettings()
    ingestion: IngestionSettings = IngestionSettings()
    llm: LlmSettings = LlmSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    auth: AuthSettings = AuthSettings()
    sona: SonaSettings = SonaSettings()
    sync: SyncSettings = SyncSettings()

    @property
    def uses_embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.embedded.postgres_port}/media_gateway"

    @property
    def effective_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"redis://127.0.0.1:{self.embedded.redis_port}/0"

    def service_url(self, service: ServiceName) -> str:
        configured: str | None = getattr(self.service_urls, service)
        if configured:
            return configured.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.ports.of(service)}"

    @property
    def token_issuer(self) -> str:
        return self.auth.issuer.rstrip("/") or self.service_url("auth")

    @property
    def jwks_url(self) -> str:
        return self.auth.jwks_url or f"{self.service_url('auth')}/.well-known/jwks.json"

    @property
    def keyword_index_path(self) -> Path:
        return self.data_dir / "discovery" / "keyword-index"

    @property
    def vectors_path(self) -> Path:
        return self.data_dir / "vectors" / self.vectors.collection

"""One settings tree for every service: environment variables prefixed `MG_`, nested with `__`."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator
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


def _parse_networks(value: list[str]) -> list[str]:
    # A typo must stop the start, not turn every rate-limited request into a 500.
    for cidr in value:
        ipaddress.ip_network(cidr.strip(), strict=False)
    return value


# CIDRs (or bare addresses) of proxies whose forwarding headers are believed.
TrustedProxies = Annotated[list[str], AfterValidator(_parse_networks)]


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
    # The local ONNX model. model_path: an all-MiniLM-L6-v2-compatible .onnx file (inputs input_ids,
    # attention_mask, token_type_ids; output last_hidden_state, 384-d); empty = the bundled model,
    # converted once to dynamic int8 into cache_dir (empty = $XDG_CACHE_HOME/media-gateway/models).
    model_path: str = ""
    cache_dir: str = ""
    # One: the services share a few cores with the model, and a second intra-op thread cost 20 % more
    # CPU per text for 25 % less wall time (int8 model, catalog overviews, 2 cores).
    onnx_threads: int = 1
    # all-MiniLM-L6-v2 was trained on 128 word pieces; longer inputs cost time and add little.
    max_tokens: int = 128
    # Texts per job on the model's thread (the model itself runs one text at a time): bounds how long
    # a bulk embed makes a query wait behind it.
    batch_size: int = 16


class VectorSettings(BaseModel):
    backend: Literal["edge"] = "edge"
    collection: str = "content"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    full_scan_threshold: int = 10_000
    # How often a process reading vectors (discovery, SONA) asks the catalog what changed.
    replica_poll_sec: float = Field(default=1.0, gt=0, le=60)


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
    # How far down the relevance ranking personalization may lift a title onto page 1.
    personalization_candidates: int = Field(default=100, ge=1, le=500)
    personalization_cache_ttl_sec: int = Field(default=300, ge=1)
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
    # Authorization server (auth service).
    refresh_token_ttl_sec: int = Field(default=30 * 86_400, ge=60)
    authorization_code_ttl_sec: int = Field(default=300, ge=60, le=600)
    # A pending /auth/authorize request (login and consent page) lives this long.
    authorization_request_ttl_sec: int = Field(default=600, ge=60)
    device_code_ttl_sec: int = Field(default=900, ge=1)
    device_poll_interval_sec: int = Field(default=5, ge=1)
    signing_algorithm: Literal["RS256", "EdDSA"] = "RS256"
    # Encrypts the private signing keys at rest (AES-256-GCM): 32 bytes, base64url. Empty: a key kept
    # 0600 in the data dir (set this when several auth replicas share one database).
    key_encryption_key: SecretStr = Field(default=SecretStr(""), repr=False)
    # Each auth process rereads the signing keys this often (a rotation elsewhere reaches it).
    keys_reload_sec: float = Field(default=30.0, ge=0)
    # After a rotation the previous key stays published this much longer than its tokens live.
    key_overlap_extra_sec: int = Field(default=300, ge=0)
    # argon2id; the defaults are RFC 9106's second recommendation (argon2-cffi's defaults). Tests
    # lower them, production must not.
    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65_536, ge=8)
    password_hash_parallelism: int = Field(default=4, ge=1)
    # The first-party public client the JSON login, the apps and TV devices use.
    first_party_client_id: str = "media-gateway-app"
    first_party_redirect_uris: list[str] = []
    # The services' own confidential client, registered at first start; its secret is kept (0600)
    # in the data dir.
    services_client_id: str = "media-gateway-services"
    # Its secret; empty: one made and kept in the data dir (set it when auth runs as several replicas).
    services_client_secret: SecretStr = Field(default=SecretStr(""), repr=False)
    # The token endpoints keep registered clients this long in memory.
    client_cache_ttl_sec: float = Field(default=30.0, ge=0)
    bootstrap_clients: bool = True
    # How often expired codes, tokens and retired keys are deleted.
    purge_interval_sec: float = Field(default=3600.0, gt=0)
    # Rate limits (GCRA: `limit` requests per window, refilled smoothly). Device-code polling of
    # /auth/token is paced by `slow_down` instead and does not count.
    rate_limit_token_per_min: int = Field(default=10, ge=1)
    rate_limit_device_per_min: int = Field(default=5, ge=1)
    rate_limit_authorize_per_min: int = Field(default=20, ge=1)
    rate_limit_login_per_min: int = Field(default=10, ge=1)
    rate_limit_register_per_hour: int = Field(default=5, ge=1)
    # POST /auth/register (RFC 7591), per client address.
    rate_limit_client_registration_per_hour: int = Field(default=20, ge=1)
    # Multiplies every window (tests shorten it to watch a window recover).
    rate_limit_window_scale: float = Field(default=1.0, gt=0)
    # Open dynamic client registration (RFC 7591, POST /auth/register): how an MCP assistant signs a user
    # in without an operator. Such clients get user scopes only, and act only after a user's consent on
    # a page that says they are not ours, so it is on by default; turn it off, or require the token below.
    client_registration_enabled: bool = True
    # When set, registration needs `Authorization: Bearer <this>` (an RFC 7591 initial access token).
    registration_access_token: SecretStr = Field(default=SecretStr(""), repr=False)
    # RFC 8707 resources a token may be asked for (exact URIs); empty: the gateway's URL and the MCP
    # endpoint's (`mcp.public_url`, else the mcp service URL + /mcp).
    resource_indicators: list[str] = []
    # Peers (CIDRs) whose forwarded header names the client; anyone else is the client.
    trusted_proxies: TrustedProxies = []
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # Google sign-in; off while the client id is empty. Plain GOOGLE_CLIENT_ID and
    # GOOGLE_CLIENT_SECRET are read when these are unset (see Settings).
    google_client_id: str = ""
    google_client_secret: SecretStr = SecretStr("")
    google_authorize_url: str = "https://accounts.google.com/o/oauth2/v2/auth"
    google_token_url: str = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_userinfo_url: str = "https://openidconnect.googleapis.com/v1/userinfo"
    google_issuer: str = "https://accounts.google.com"
    # Empty means {issuer}/auth/oauth/google/callback; it must match the URI registered at Google.
    google_redirect_uri: str = ""
    google_state_ttl_sec: int = Field(default=600, ge=1)
    google_timeout_sec: float = Field(default=10.0, gt=0)


class SonaSettings(BaseModel):
    # Users with at most this many interactions get the cold-start recommender.
    cold_start_max_interactions: int = Field(default=5, ge=0)
    # Background training: on this schedule (0: never), and early after this many new events.
    retrain_interval_sec: float = Field(default=3600.0, ge=0)
    retrain_after_events: int = Field(default=500, ge=1)
    # How often a replica looks for a newer model snapshot trained elsewhere (0: never).
    model_poll_sec: float = Field(default=60.0, ge=0)
    # Train at start when no snapshot exists yet (off in tests, which train through the admin API).
    train_on_start: bool = True
    # EASE L2 regularization.
    ease_l2: float = Field(default=200.0, gt=0)
    # Per-user state (history, scores, vectors, adapter) is cached in memory this long.
    user_state_ttl_sec: float = Field(default=60.0, gt=0)
    user_state_cache_size: int = Field(default=2048, ge=1)
    # Users need this many rated or watched titles before a LoRA adapter is trained for them.
    lora_min_interactions: int = Field(default=3, ge=1)
    lora_rank: int = Field(default=8, ge=1, le=64)
    lora_alpha: float = Field(default=16.0, gt=0)
    # Versions of a user's adapter kept in PostgreSQL (the active one included).
    lora_keep_versions: int = Field(default=5, ge=1)
    # Recommendations: candidates pulled from each source, MMR trade-off, client cache hint.
    candidates_per_source: int = Field(default=200, ge=10, le=2000)
    mmr_lambda: float = Field(default=0.7, ge=0, le=1)
    # How much the LoRA-personalized similarity multiplies a blended score: score * (1 + boost * sim).
    lora_boost: float = Field(default=0.2, ge=0)
    recommendations_ttl_sec: int = Field(default=300, ge=0)
    default_region: str = "US"
    # Onboarding answers from auth are cached per user this long.
    onboarding_ttl_sec: float = Field(default=300.0, gt=0)
    # The running experiment with this key sets discovery's blend weight / the recommendation knobs.
    search_experiment_key: str = "search_personalization"
    recommendations_experiment_key: str = "recommendations"
    # Running experiments are cached in memory this long.
    experiment_cache_ttl_sec: float = Field(default=5.0, ge=0)
    # BLAS threads for the process (numpy/scipy): at request sizes, waking a second BLAS thread on
    # a busy 2-core box costs 10-20x the work itself (measured: a 4.8k x 384 product 3.9 ms vs 0.2
    # ms). Process-wide, so it also applies to the other services of an embedded stack; 0 leaves it.
    blas_threads: int = Field(default=1, ge=0)


class SyncSettings(BaseModel):
    # A progress report at or above this fraction of the runtime marks the title watched.
    completion_threshold: float = Field(default=0.95, gt=0, le=1)
    device_online_sec: int = Field(default=60, ge=1)
    # Positions below this fraction of the runtime are not recorded as progress.
    min_progress_fraction: float = Field(default=0.01, ge=0, lt=1)
    # Group commit: mutations arriving within this window share one transaction (at most max_ops).
    group_commit_window_ms: float = Field(default=2.0, ge=0)
    group_commit_max_ops: int = Field(default=512, ge=1)
    # A remote hybrid-clock timestamp further ahead than this is clamped to server time.
    max_clock_drift_sec: int = Field(default=60, ge=1)
    tombstone_ttl_days: int = Field(default=30, ge=1)
    gc_interval_sec: float = Field(default=3600.0, ge=0)  # 0: no periodic tombstone collection
    outbox_relay_interval_sec: float = Field(default=5.0, gt=0)
    changes_page_max: int = Field(default=1000, ge=1)
    batch_max_ops: int = Field(default=10_000, ge=1)
    # Devices and remote commands (sync-B).
    max_devices_per_user: int = Field(default=50, ge=1)
    command_ttl_sec: float = Field(default=5.0, gt=0)
    # WebSocket live push: messages buffered per socket before a slow client is told to resume.
    ws_queue_size: int = Field(default=512, ge=8)
    ws_replay_page_size: int = Field(default=500, ge=1, le=5000)
    ws_send_timeout_sec: float = Field(default=10.0, gt=0)


class PlaybackSettings(BaseModel):
    # A resume point at or above this fraction of the runtime is a finished title: the next session
    # starts from 0 and continue-watching leaves it out.
    completion_threshold: float = Field(default=0.95, gt=0, le=1)
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    outbox_relay_interval_sec: float = Field(default=5.0, gt=0)


class GatewaySettings(BaseModel):
    # Requests per minute by tier (GCRA: the whole budget may come as a burst, then it refills
    # smoothly). Anonymous callers are counted per client address, users per user, OAuth clients
    # acting for themselves per client id.
    rate_limit_anonymous_per_min: int = Field(default=300, ge=1)
    rate_limit_user_per_min: int = Field(default=1200, ge=1)
    rate_limit_client_per_min: int = Field(default=6000, ge=1)
    rate_limit_window_scale: float = Field(default=1.0, gt=0)
    # Request bodies are read whole before forwarding; platform webhooks may be large feeds.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    webhook_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Proxies in front of the gateway whose X-Forwarded-For / Forwarded entries are believed.
    trusted_proxies: TrustedProxies = []
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    # The live-sync WebSocket relay gives up on an upstream that does not answer the handshake.
    websocket_connect_timeout_sec: float = Field(default=5.0, gt=0)
    # Browser apps on these origins may call the API (CORS); empty: none, as for native apps.
    cors_origins: list[str] = []


class McpSettings(BaseModel):
    # The MCP endpoint as clients reach it (the OAuth resource identifier in the protected-resource
    # metadata); unset: the mcp service URL + /mcp. Set it when a proxy or another host name fronts it.
    public_url: str = ""
    # `media-gateway mcp-stdio` only: the user's access token the tools act with (stdio has no HTTP
    # Authorization header). Unset: only the public tools work.
    access_token: SecretStr = Field(default=SecretStr(""), repr=False)


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
    # Processes of `serve NAME` sharing its port (pre-fork): one per core for the stateless services.
    workers: int = Field(default=1, ge=1, le=64)
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
    playback: PlaybackSettings = PlaybackSettings()
    gateway: GatewaySettings = GatewaySettings()
    mcp: McpSettings = McpSettings()

    @model_validator(mode="after")
    def _google_credentials_from_plain_env(self) -> Settings:
        # Google's own docs name these GOOGLE_CLIENT_ID / GOOGLE_CLIENT_SECRET; MG_AUTH__* wins.
        updates: dict[str, object] = {}
        if not self.auth.google_client_id and os.environ.get("GOOGLE_CLIENT_ID"):
            updates["google_client_id"] = os.environ["GOOGLE_CLIENT_ID"]
        if not self.auth.google_client_secret.get_secret_value() and os.environ.get("GOOGLE_CLIENT_SECRET"):
            updates["google_client_secret"] = SecretStr(os.environ["GOOGLE_CLIENT_SECRET"])
        if updates:
            self.auth = self.auth.model_copy(update=updates)
        return self

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

"""One settings tree for every service: environment variables prefixed `MG_`, nested with `__`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
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
    backend: Literal["redis"] = "redis"
    topic_prefix: str = "media-gateway"
    # A message unacked this long is handed to another consumer of the group.
    redelivery_idle_ms: int = 30_000
    max_stream_length: int = 100_000


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
    max_tokens: int = 256
    batch_size: int = 32


class VectorSettings(BaseModel):
    backend: Literal["edge"] = "edge"
    collection: str = "content"
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    full_scan_threshold: int = 10_000


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

    ports: ServicePorts = ServicePorts()
    service_urls: ServiceUrls = ServiceUrls()
    embedded: EmbeddedSettings = EmbeddedSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    http: HttpClientSettings = HttpClientSettings()
    events: EventSettings = EventSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    vectors: VectorSettings = VectorSettings()

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
    def vectors_path(self) -> Path:
        return self.data_dir / "vectors" / self.vectors.collection

"""Tables of the `sona` schema. (`sona/models/` is the model library, hence `tables` here.)"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="sona")

INTERACTION_KINDS = (
    "started",
    "progress",
    "completed",
    "rated",
    "dismissed",
    "watchlist_added",
    "watchlist_removed",
)
_KINDS_SQL = ", ".join(f"'{k}'" for k in INTERACTION_KINDS)

# The event log: one row per accepted event, deduplicated per user on the event id.
interactions = Table(
    "interactions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("kind", String(24), nullable=False),
    # The rating (1-5) or the completion (0-1), depending on the kind.
    Column("value", Float),
    Column("source", String(8), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"kind IN ({_KINDS_SQL})", name="interaction_kind"),
    CheckConstraint("source IN ('api', 'bus')", name="interaction_source"),
    UniqueConstraint("user_id", "event_id", name="interactions_user_event"),
    Index("interactions_user_occurred", "user_id", "occurred_at"),
)

# What the log says about each (user, title), kept current by the same statement that logs an event.
# Every column merges commutatively (max, or, latest by occurred_at), so arrival order does not matter.
user_items = Table(
    "user_items",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("started", Boolean, nullable=False, server_default="false"),
    Column("completion", Float, nullable=False, server_default="0"),
    Column("completed", Boolean, nullable=False, server_default="false"),
    Column("rating", SmallInteger),
    Column("rated_at", DateTime(timezone=True)),
    Column("dismissed", Boolean, nullable=False, server_default="false"),
    Column("in_watchlist", Boolean, nullable=False, server_default="false"),
    Column("watchlist_at", DateTime(timezone=True)),
    Column("events", Integer, nullable=False, server_default="0"),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("user_id", "content_id"),
    Index("user_items_content", "content_id"),
)

model_snapshots = Table(
    "model_snapshots",
    metadata,
    Column("version", BigInteger, Identity(), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # The highest interactions.id the model has seen.
    Column("watermark", BigInteger, nullable=False),
    Column("stats", JSONB, nullable=False, server_default="{}"),
    Column("trained_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("model_snapshots_kind_version", "kind", "version"),
)

graph_edges = Table(
    "graph_edges",
    metadata,
    Column("relation", String(8), nullable=False),
    Column("src", UUID(as_uuid=True), nullable=False),
    Column("dst", UUID(as_uuid=True), nullable=False),
    Column("weight", Float, nullable=False),
    PrimaryKeyConstraint("relation", "src", "dst"),
    CheckConstraint("relation IN ('content', 'coview')", name="graph_relation"),
)

lora_adapters = Table(
    "lora_adapters",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("alpha", Float, nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("weights", LargeBinary, nullable=False),
    Column("watermark", BigInteger, nullable=False),
    Column("metrics", JSONB, nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("trained_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "version", name="lora_adapters_user_version"),
    Index("lora_adapters_active_user", "user_id", unique=True, postgresql_where=text("active")),
)

EXPERIMENT_STATUSES = ("draft", "running", "paused", "completed")

experiments = Table(
    "experiments",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("key", String(64), nullable=False),
    Column("name", Text, nullable=False),
    Column("description", Text),
    Column("status", String(16), nullable=False),
    Column("traffic_allocation", Float, nullable=False),
    Column("variants", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN ('draft', 'running', 'paused', 'completed')", name="experiment_status"),
    CheckConstraint("traffic_allocation >= 0 AND traffic_allocation <= 1", name="traffic_allocation"),
    # At most one running experiment per key: the key is how services find "the" experiment.
    Index("experiments_running_key", "key", unique=True, postgresql_where=text("status = 'running'")),
)

experiment_exposures = Table(
    "experiment_exposures",
    metadata,
    Column(
        "experiment_id",
        UUID(as_uuid=True),
        ForeignKey("sona.experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("first_exposed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("experiment_id", "user_id"),
)

experiment_conversions = Table(
    "experiment_conversions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column(
        "experiment_id",
        UUID(as_uuid=True),
        ForeignKey("sona.experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("variant", String(64), nullable=False),
    Column("value", Float, nullable=False),
    Column("idempotency_key", String(100)),
    Column("occurred_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("experiment_id", "user_id", "idempotency_key", name="experiment_conversions_idem"),
    Index("experiment_conversions_variant", "experiment_id", "variant"),
)

"""Tables of the `catalog` schema. Written only by ingestion; read by discovery and SONA."""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="catalog")

content = Table(
    "content",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    # Blocking key for entity resolution (catalog.schemas.normalize_title).
    Column("title_normalized", Text, nullable=False),
    Column("original_title", Text),
    Column("year", Integer),
    Column("release_date", Date),
    Column("runtime_minutes", Integer),
    Column("overview", Text),
    Column("genres", ARRAY(Text), nullable=False, server_default="{}"),
    Column("keywords", ARRAY(Text), nullable=False, server_default="{}"),
    Column("cast", JSONB, nullable=False, server_default="[]"),
    Column("directors", ARRAY(Text), nullable=False, server_default="{}"),
    Column("certifications", JSONB, nullable=False, server_default="{}"),
    Column("popularity", Float),
    Column("rating", Float),
    Column("vote_count", Integer),
    Column("images", JSONB, nullable=False, server_default="{}"),
    Column("is_original", Boolean, nullable=False, server_default="false"),
    Column("quality_score", Float),
    # Hash of the embedded text: re-embedding is needed only when it changes.
    Column("embedding_text_hash", String(64)),
    Column("embedding_updated_at", DateTime(timezone=True)),
    # The embedder's `model_id` that made the vector: another model makes it due (see enrichment).
    Column("embedding_model", String(200)),
    # Hash of the metadata as last written: an identical re-ingest is detected without a diff.
    Column("content_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('movie', 'series', 'season', 'episode')", name="content_kind"),
    CheckConstraint("quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)", name="quality"),
    Index("content_title_year", "title_normalized", "year"),
    Index("content_embedding_updated_at", "embedding_updated_at"),
    Index("content_popularity", "popularity"),
)

entity_mappings = Table(
    "entity_mappings",
    metadata,
    Column("id_type", String(40), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column(
        "entity_id", UUID(as_uuid=True), ForeignKey("catalog.content.id", ondelete="CASCADE"), nullable=False
    ),
    Column("confidence", Float, nullable=False),
    Column("method", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("id_type", "external_id"),
    CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    Index("entity_mappings_entity", "entity_id"),
)

offers = Table(
    "offers",
    metadata,
    Column(
        "content_id", UUID(as_uuid=True), ForeignKey("catalog.content.id", ondelete="CASCADE"), nullable=False
    ),
    Column("platform", String(40), nullable=False),
    Column("region", String(2), nullable=False),
    Column("monetization", String(16), nullable=False),
    Column("tier", String(40)),
    Column("price", Numeric(10, 2)),
    Column("currency", String(3)),
    Column("quality", String(8)),
    Column("deep_link_app", Text),
    Column("deep_link_web", Text),
    Column("deep_link_tv", Text),
    Column("platform_content_id", String(200), nullable=False),
    Column("available_since", Date),
    Column("expires_on", Date),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("content_id", "platform", "region", "monetization"),
    CheckConstraint(
        "monetization IN ('subscription', 'free', 'ads', 'rent', 'buy', 'addon')", name="offer_monetization"
    ),
    UniqueConstraint(
        "platform", "region", "monetization", "platform_content_id", name="offers_platform_item"
    ),
    Index("offers_region_platform", "region", "platform"),
    Index("offers_expires_on", "expires_on"),
    Index("offers_available_since", "available_since"),
)

# Each title's vector as ingestion last wrote it: what every process that searches by vector loads
# into an engine of its own and keeps current by polling `seq` (core.vectors.replica). Every write
# takes a new `seq` under one advisory lock (catalog.repository.vectors), so `seq` order is commit
# order and "what changed since N" misses nothing. A deleted title stays as a tombstone (`vector`
# NULL) for readers to see; no foreign key, or the row would go with the title.
content_vectors = Table(
    "content_vectors",
    metadata,
    Column("content_id", UUID(as_uuid=True), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    # The embedder's `model_id` and vector size: a reader on another model ignores the row.
    Column("model", String(200), nullable=False),
    Column("dimension", Integer, nullable=False),
    # float32, little-endian, `dimension` of them; NULL for a deleted title.
    Column("vector", LargeBinary),
    Column("payload", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("vector IS NULL OR octet_length(vector) = 4 * dimension", name="content_vectors_length"),
    Index("content_vectors_by_seq", "seq", unique=True),
)

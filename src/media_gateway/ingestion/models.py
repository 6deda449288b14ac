"""Tables of the `ingestion` schema: source cursors, job runs and the event outbox."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Identity, Index, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="ingestion")

source_cursors = Table(
    "source_cursors",
    metadata,
    Column("source", String(120), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("kind", String(32), nullable=False),  # ingest, enrich
    Column("source", String(120)),
    Column("status", String(16), nullable=False),  # queued, running, succeeded, failed
    Column("counts", JSONB, nullable=False, server_default="{}"),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    # Bumped while the job runs; a job whose heartbeat stopped died with its process.
    Column("heartbeat_at", DateTime(timezone=True)),
    Index("jobs_created_at", "created_at"),
)

# Events are written in the same transaction as the catalog change they describe and relayed to the
# bus afterwards, so a crash between commit and publish delays an event instead of losing it.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("topic", String(120), nullable=False),
    Column("event", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

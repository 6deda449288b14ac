"""Tables of the `playback` schema.

Content ids are catalog ids, but without a foreign key: `catalog` belongs to ingestion, and a title
taken out of the catalog must not take the user's viewing history with it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="playback")

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("device_id", Text),
    Column("platform", String(40)),
    Column("region", String(2), nullable=False),
    Column("state", String(8), nullable=False),
    Column("position_seconds", Float, nullable=False),
    Column("duration_seconds", Float),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("ended_at", DateTime(timezone=True)),
    CheckConstraint("state IN ('playing', 'paused', 'ended')", name="session_state"),
    CheckConstraint("position_seconds >= 0", name="session_position"),
    CheckConstraint("duration_seconds IS NULL OR duration_seconds > 0", name="session_duration"),
    # The user's sessions newest first, and the active ones among them.
    Index("sessions_user_started", "user_id", text("started_at DESC"), text("id DESC")),
    Index(
        "sessions_user_active",
        "user_id",
        text("started_at DESC"),
        text("id DESC"),
        postgresql_where=text("state <> 'ended'"),
    ),
)

# Where the user left each title, whichever session or device moved it last. The platform and
# region of that session give the deep link back into the title.
resume_points = Table(
    "resume_points",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", UUID(as_uuid=True), nullable=False),
    Column("position_seconds", Float, nullable=False),
    Column("duration_seconds", Float),
    Column("session_id", UUID(as_uuid=True), nullable=False),
    Column("platform", String(40)),
    Column("region", String(2), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "content_id"),
    CheckConstraint("position_seconds >= 0", name="resume_position"),
    CheckConstraint("duration_seconds IS NULL OR duration_seconds > 0", name="resume_duration"),
    # Continue-watching: most recently watched first.
    Index("resume_points_user_recent", "user_id", text("updated_at DESC"), text("content_id DESC")),
)

# Bus events written in the transaction of the change they describe (core/events/outbox.py).
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("event", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

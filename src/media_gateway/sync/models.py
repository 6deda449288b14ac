"""Tables of the `sync` schema.

PostgreSQL is the only source of truth: replicas keep no state between requests, so every GET reads
these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData(schema="sync")

# Hybrid-clock encodings and the device-id tie-break compare byte-wise, whatever the database locale.
_ORDERED = Text(collation="C")

# Every change to a user's sync state, in commit order per user (see oplog.py), for delta sync and
# live push. (user_id, op_id) makes client replays idempotent.
operations = Table(
    "operations",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("op_id", UUID(as_uuid=True), nullable=False),
    Column("device_id", Text),
    Column("kind", Text, nullable=False),
    Column("content_id", Text),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("hlc", _ORDERED, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("user_id", "op_id", name="operations_user_op"),
    Index("operations_user_seq", "user_id", "seq"),
)

# The watchlist OR-Set: one row per add tag. A row with removed_at set is a tombstone; a tombstone
# may arrive before its add (added_* NULL) so that the late add stays dead.
user_watchlists = Table(
    "user_watchlists",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", Text, nullable=False),
    Column("tag", UUID(as_uuid=True), nullable=False),
    Column("added_hlc", _ORDERED),
    Column("added_device_id", Text),
    Column("added_at", DateTime(timezone=True)),
    Column("removed_hlc", _ORDERED),
    Column("removed_at", DateTime(timezone=True)),
    PrimaryKeyConstraint("user_id", "content_id", "tag"),
    Index(
        "user_watchlists_live",
        "user_id",
        "content_id",
        postgresql_where=text("removed_at IS NULL AND added_at IS NOT NULL"),
    ),
    Index("user_watchlists_tombstones", "removed_at", postgresql_where=text("removed_at IS NOT NULL")),
)

# One LWW register per (user, content), ordered by (hlc, device_id).
user_progress = Table(
    "user_progress",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", Text, nullable=False),
    Column("position_seconds", Float, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("state", Text, nullable=False),  # playing, paused, stopped
    Column("completed", Boolean, nullable=False, server_default=false()),
    Column("hlc", _ORDERED, nullable=False),
    Column("device_id", _ORDERED, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "content_id"),
)

# Titles watched to completion: a grow-only set keeping the latest completion of each title.
user_history = Table(
    "user_history",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("content_id", Text, nullable=False),
    Column("position_seconds", Float, nullable=False),
    Column("duration_seconds", Float, nullable=False),
    Column("hlc", _ORDERED, nullable=False),
    Column("device_id", _ORDERED, nullable=False, server_default=""),
    Column("completed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "content_id"),
)

user_devices = Table(
    "user_devices",
    metadata,
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("device_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("device_type", Text, nullable=False),  # tv, phone, tablet, web, desktop
    Column("platform", Text),
    Column("capabilities", JSONB, nullable=False, server_default="{}"),
    Column("last_seen_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("user_id", "device_id"),
)

device_commands = Table(
    "device_commands",
    metadata,
    Column("command_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False),
    Column("target_device_id", Text, nullable=False),
    Column("source_device_id", Text),
    Column("command", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Index("device_commands_target", "user_id", "target_device_id"),
)

# Bus events written in the transaction of the change they describe, relayed after the commit, so
# that an acknowledged write reaches the bus even if the process dies right after the commit.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("event", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

"""Sync state: the operation log, watchlist OR-Set tags, progress registers, history, devices,
device commands and the event outbox.

Revision ID: sync_0002
Revises: sync_0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "sync_0002"
down_revision: str | None = "sync_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("op_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("hlc", sa.Text(collation="C"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("user_id", "op_id", name="operations_user_op"),
        schema="sync",
    )
    op.create_index("operations_user_seq", "operations", ["user_id", "seq"], unique=False, schema="sync")

    op.create_table(
        "user_watchlists",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=False),
        sa.Column("tag", sa.UUID(), nullable=False),
        sa.Column("added_hlc", sa.Text(collation="C"), nullable=True),
        sa.Column("added_device_id", sa.Text(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_hlc", sa.Text(collation="C"), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "content_id", "tag"),
        schema="sync",
    )
    op.create_index(
        "user_watchlists_live",
        "user_watchlists",
        ["user_id", "content_id"],
        unique=False,
        schema="sync",
        postgresql_where=sa.text("removed_at IS NULL AND added_at IS NOT NULL"),
    )
    op.create_index(
        "user_watchlists_tombstones",
        "user_watchlists",
        ["removed_at"],
        unique=False,
        schema="sync",
        postgresql_where=sa.text("removed_at IS NOT NULL"),
    )

    op.create_table(
        "user_progress",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=False),
        sa.Column("position_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("completed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("hlc", sa.Text(collation="C"), nullable=False),
        sa.Column("device_id", sa.Text(collation="C"), server_default="", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "content_id"),
        schema="sync",
    )

    op.create_table(
        "user_history",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.Text(), nullable=False),
        sa.Column("position_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("hlc", sa.Text(collation="C"), nullable=False),
        sa.Column("device_id", sa.Text(collation="C"), server_default="", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "content_id"),
        schema="sync",
    )

    op.create_table(
        "user_devices",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("device_type", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=True),
        sa.Column("capabilities", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id"),
        schema="sync",
    )

    op.create_table(
        "device_commands",
        sa.Column("command_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("target_device_id", sa.Text(), nullable=False),
        sa.Column("source_device_id", sa.Text(), nullable=True),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("command_id"),
        schema="sync",
    )
    op.create_index(
        "device_commands_target",
        "device_commands",
        ["user_id", "target_device_id"],
        unique=False,
        schema="sync",
    )

    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("event", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        schema="sync",
    )


def downgrade() -> None:
    op.drop_table("outbox", schema="sync")
    op.drop_table("device_commands", schema="sync")
    op.drop_table("user_devices", schema="sync")
    op.drop_table("user_history", schema="sync")
    op.drop_table("user_progress", schema="sync")
    op.drop_table("user_watchlists", schema="sync")
    op.drop_table("operations", schema="sync")

"""Playback state: sessions, resume points and the event outbox.

Revision ID: playback_0002
Revises: playback_0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "playback_0002"
down_revision: str | None = "playback_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("platform", sa.String(40), nullable=True),
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("position_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("state IN ('playing', 'paused', 'ended')", name="session_state"),
        sa.CheckConstraint("position_seconds >= 0", name="session_position"),
        sa.CheckConstraint("duration_seconds IS NULL OR duration_seconds > 0", name="session_duration"),
        schema="playback",
    )
    op.create_index(
        "sessions_user_started",
        "sessions",
        ["user_id", sa.text("started_at DESC"), sa.text("id DESC")],
        schema="playback",
    )
    op.create_index(
        "sessions_user_active",
        "sessions",
        ["user_id", sa.text("started_at DESC"), sa.text("id DESC")],
        schema="playback",
        postgresql_where=sa.text("state <> 'ended'"),
    )

    op.create_table(
        "resume_points",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("position_seconds", sa.Float(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("session_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(40), nullable=True),
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "content_id"),
        sa.CheckConstraint("position_seconds >= 0", name="resume_position"),
        sa.CheckConstraint("duration_seconds IS NULL OR duration_seconds > 0", name="resume_duration"),
        schema="playback",
    )
    op.create_index(
        "resume_points_user_recent",
        "resume_points",
        ["user_id", sa.text("updated_at DESC"), sa.text("content_id DESC")],
        schema="playback",
    )

    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("event", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        schema="playback",
    )


def downgrade() -> None:
    op.drop_table("outbox", schema="playback")
    op.drop_table("resume_points", schema="playback")
    op.drop_table("sessions", schema="playback")

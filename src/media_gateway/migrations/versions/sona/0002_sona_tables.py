"""Interactions, per-title aggregates, model snapshots, graph edges, LoRA adapters and experiments.

Revision ID: sona_0002
Revises: sona_0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "sona_0002"
down_revision: str | None = "sona_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "'started', 'progress', 'completed', 'rated', 'dismissed', 'watchlist_added', 'watchlist_removed'"


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint(f"kind IN ({_KINDS})", name="interaction_kind"),
        sa.CheckConstraint("source IN ('api', 'bus')", name="interaction_source"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "event_id", name="interactions_user_event"),
        schema="sona",
    )
    op.create_index("interactions_user_occurred", "interactions", ["user_id", "occurred_at"], schema="sona")
    op.create_table(
        "user_items",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("started", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("completion", sa.Float(), server_default="0", nullable=False),
        sa.Column("completed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dismissed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("in_watchlist", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("watchlist_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events", sa.Integer(), server_default="0", nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "content_id"),
        schema="sona",
    )
    op.create_index("user_items_content", "user_items", ["content_id"], schema="sona")
    op.create_table(
        "model_snapshots",
        sa.Column("version", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("stats", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
        schema="sona",
    )
    op.create_index("model_snapshots_kind_version", "model_snapshots", ["kind", "version"], schema="sona")
    op.create_table(
        "graph_edges",
        sa.Column("relation", sa.String(length=8), nullable=False),
        sa.Column("src", sa.UUID(), nullable=False),
        sa.Column("dst", sa.UUID(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.CheckConstraint("relation IN ('content', 'coview')", name="graph_relation"),
        sa.PrimaryKeyConstraint("relation", "src", "dst"),
        schema="sona",
    )
    op.create_table(
        "lora_adapters",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("weights", sa.LargeBinary(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "version", name="lora_adapters_user_version"),
        schema="sona",
    )
    op.create_index(
        "lora_adapters_active_user",
        "lora_adapters",
        ["user_id"],
        unique=True,
        schema="sona",
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("traffic_allocation", sa.Float(), nullable=False),
        sa.Column("variants", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'running', 'paused', 'completed')", name="experiment_status"),
        sa.CheckConstraint("traffic_allocation >= 0 AND traffic_allocation <= 1", name="traffic_allocation"),
        sa.PrimaryKeyConstraint("id"),
        schema="sona",
    )
    op.create_index(
        "experiments_running_key",
        "experiments",
        ["key"],
        unique=True,
        schema="sona",
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "experiment_exposures",
        sa.Column("experiment_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("first_exposed_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["sona.experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("experiment_id", "user_id"),
        schema="sona",
    )
    op.create_table(
        "experiment_conversions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("experiment_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=_now(), nullable=False),
        sa.ForeignKeyConstraint(["experiment_id"], ["sona.experiments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "experiment_id", "user_id", "idempotency_key", name="experiment_conversions_idem"
        ),
        schema="sona",
    )
    op.create_index(
        "experiment_conversions_variant",
        "experiment_conversions",
        ["experiment_id", "variant"],
        schema="sona",
    )


def downgrade() -> None:
    op.drop_table("experiment_conversions", schema="sona")
    op.drop_table("experiment_exposures", schema="sona")
    op.drop_table("experiments", schema="sona")
    op.drop_table("lora_adapters", schema="sona")
    op.drop_table("graph_edges", schema="sona")
    op.drop_table("model_snapshots", schema="sona")
    op.drop_table("user_items", schema="sona")
    op.drop_table("interactions", schema="sona")

"""Canonical content, entity mappings and offers.

Revision ID: catalog_0002
Revises: catalog_0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision: str = "catalog_0002"
down_revision: str | None = "catalog_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_normalized", sa.Text(), nullable=False),
        sa.Column("original_title", sa.Text(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column("runtime_minutes", sa.Integer(), nullable=True),
        sa.Column("overview", sa.Text(), nullable=True),
        sa.Column("genres", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("keywords", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("cast", postgresql.JSONB(astext_type=Text()), server_default="[]", nullable=False),
        sa.Column("directors", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column(
            "certifications", postgresql.JSONB(astext_type=Text()), server_default="{}", nullable=False
        ),
        sa.Column("popularity", sa.Float(), nullable=True),
        sa.Column("rating", sa.Float(), nullable=True),
        sa.Column("vote_count", sa.Integer(), nullable=True),
        sa.Column("images", postgresql.JSONB(astext_type=Text()), server_default="{}", nullable=False),
        sa.Column("is_original", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("embedding_text_hash", sa.String(length=64), nullable=True),
        sa.Column("embedding_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('movie', 'series', 'season', 'episode')", name="content_kind"),
        sa.CheckConstraint(
            "quality_score IS NULL OR (quality_score >= 0 AND quality_score <= 1)", name="quality"
        ),
        sa.PrimaryKeyConstraint("id"),
        schema="catalog",
    )
    op.create_index(
        "content_embedding_updated_at", "content", ["embedding_updated_at"], unique=False, schema="catalog"
    )
    op.create_index("content_popularity", "content", ["popularity"], unique=False, schema="catalog")
    op.create_index(
        "content_title_year", "content", ["title_normalized", "year"], unique=False, schema="catalog"
    )
    op.create_table(
        "entity_mappings",
        sa.Column("id_type", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("entity_id", sa.UUID(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        sa.ForeignKeyConstraint(["entity_id"], ["catalog.content.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_type", "external_id"),
        schema="catalog",
    )
    op.create_index(
        "entity_mappings_entity", "entity_mappings", ["entity_id"], unique=False, schema="catalog"
    )
    op.create_table(
        "offers",
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("monetization", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=40), nullable=True),
        sa.Column("price", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("quality", sa.String(length=8), nullable=True),
        sa.Column("deep_link_app", sa.Text(), nullable=True),
        sa.Column("deep_link_web", sa.Text(), nullable=True),
        sa.Column("deep_link_tv", sa.Text(), nullable=True),
        sa.Column("platform_content_id", sa.String(length=200), nullable=False),
        sa.Column("available_since", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "monetization IN ('subscription', 'free', 'ads', 'rent', 'buy', 'addon')",
            name="offer_monetization",
        ),
        sa.ForeignKeyConstraint(["content_id"], ["catalog.content.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("content_id", "platform", "region", "monetization"),
        sa.UniqueConstraint(
            "platform", "region", "monetization", "platform_content_id", name="offers_platform_item"
        ),
        schema="catalog",
    )
    op.create_index("offers_available_since", "offers", ["available_since"], unique=False, schema="catalog")
    op.create_index("offers_expires_on", "offers", ["expires_on"], unique=False, schema="catalog")
    op.create_index(
        "offers_region_platform", "offers", ["region", "platform"], unique=False, schema="catalog"
    )


def downgrade() -> None:
    op.drop_table("offers", schema="catalog")
    op.drop_table("entity_mappings", schema="catalog")
    op.drop_table("content", schema="catalog")

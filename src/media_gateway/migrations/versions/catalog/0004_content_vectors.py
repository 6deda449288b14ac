"""Each title's vector in PostgreSQL, with a change sequence readers poll (catalog.content_vectors).

Vectors lived only in the ingestion process's own vector index; no process could read them but that
one. Titles embedded before this revision have no row yet, so their stamp is cleared: ingestion
re-embeds them at its next start (its vector catch-up), which fills the table.

Revision ID: catalog_0004
Revises: catalog_0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "catalog_0004"
down_revision: str | None = "catalog_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same key as catalog.repository.vectors.SEQ_LOCK: every writer of the table takes it first.
_TOMBSTONE = """
CREATE FUNCTION catalog.content_vectors_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('mg-catalog-content-vectors'));
    UPDATE catalog.content_vectors
    SET vector = NULL, payload = NULL,
        seq = nextval('catalog.content_vectors_seq'), updated_at = clock_timestamp()
    WHERE content_id = OLD.id AND vector IS NOT NULL;
    RETURN OLD;
END
$$
"""


def upgrade() -> None:
    op.execute("CREATE SEQUENCE catalog.content_vectors_seq AS bigint")
    op.create_table(
        "content_vectors",
        sa.Column("content_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("content_id"),
        sa.CheckConstraint(
            "vector IS NULL OR octet_length(vector) = 4 * dimension", name="content_vectors_length"
        ),
        schema="catalog",
    )
    op.create_index("content_vectors_by_seq", "content_vectors", ["seq"], unique=True, schema="catalog")
    op.execute(_TOMBSTONE)
    op.execute(
        "CREATE TRIGGER content_vectors_tombstone AFTER DELETE ON catalog.content"
        " FOR EACH ROW EXECUTE FUNCTION catalog.content_vectors_tombstone()"
    )
    op.execute(
        "UPDATE catalog.content SET embedding_updated_at = NULL WHERE embedding_updated_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER content_vectors_tombstone ON catalog.content")
    op.execute("DROP FUNCTION catalog.content_vectors_tombstone()")
    op.drop_index("content_vectors_by_seq", table_name="content_vectors", schema="catalog")
    op.drop_table("content_vectors", schema="catalog")
    op.execute("DROP SEQUENCE catalog.content_vectors_seq")

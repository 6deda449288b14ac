"""Which embedding model made each title's vector.

Revision ID: catalog_0003
Revises: catalog_0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "catalog_0003"
down_revision: str | None = "catalog_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for vectors made before this column: they are due for the current model.
    op.add_column(
        "content", sa.Column("embedding_model", sa.String(length=200), nullable=True), schema="catalog"
    )


def downgrade() -> None:
    op.drop_column("content", "embedding_model", schema="catalog")

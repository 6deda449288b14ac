"""Self-registered clients (RFC 7591) and the resource a code or token family was granted for (RFC 8707).

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "auth_0003"
down_revision: str | None = "auth_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "clients",
        sa.Column("self_registered", sa.Boolean(), server_default="false", nullable=False),
        schema="auth",
    )
    op.add_column("authorization_codes", sa.Column("resource", sa.Text(), nullable=True), schema="auth")
    op.add_column("token_families", sa.Column("resource", sa.Text(), nullable=True), schema="auth")


def downgrade() -> None:
    op.drop_column("token_families", "resource", schema="auth")
    op.drop_column("authorization_codes", "resource", schema="auth")
    op.drop_column("clients", "self_registered", schema="auth")

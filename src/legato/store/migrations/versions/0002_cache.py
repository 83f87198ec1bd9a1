"""Cache entries: a component's outputs under the key of its fingerprint and input hashes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("component", sa.String(255), nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_index("ix_cache_component", "cache", ["component"])


def downgrade() -> None:
    op.drop_index("ix_cache_component", "cache")
    op.drop_table("cache")

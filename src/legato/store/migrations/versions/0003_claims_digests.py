"""Data safety: each item's input digest, who holds a run (its process's start), the run's
item count, and the graph's shape and per-node lineage (for ``resume --retry-failed``).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("process", sa.String(80), nullable=False, server_default=""))
        runs.add_column(sa.Column("total", sa.Integer))
        runs.add_column(sa.Column("shape", sa.String(64)))
        runs.add_column(sa.Column("lineage", sa.Text))
    with op.batch_alter_table("items") as items:
        items.add_column(sa.Column("inputs", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("items") as items:
        items.drop_column("inputs")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("lineage")
        runs.drop_column("shape")
        runs.drop_column("total")
        runs.drop_column("process")

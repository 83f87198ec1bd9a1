"""What the web UI shows: each run's mode and pipeline JSON, each node call's batch size, a
failed item's inputs; and indexes for the runs list filtered by pipeline or status.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("mode", sa.String(16)))
        runs.add_column(sa.Column("graph", sa.Text))
    with op.batch_alter_table("nodes") as nodes:
        nodes.add_column(sa.Column("batch", sa.Integer))
    with op.batch_alter_table("items") as items:
        items.add_column(sa.Column("inputs_ref", sa.Text))
    op.create_index("ix_runs_pipeline_started", "runs", ["pipeline", "started"])
    op.create_index("ix_runs_status_started", "runs", ["status", "started"])


def downgrade() -> None:
    op.drop_index("ix_runs_status_started", table_name="runs")
    op.drop_index("ix_runs_pipeline_started", table_name="runs")
    with op.batch_alter_table("items") as items:
        items.drop_column("inputs_ref")
    with op.batch_alter_table("nodes") as nodes:
        nodes.drop_column("batch")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("graph")
        runs.drop_column("mode")

"""What the web UI shows: each run's mode, each graph's pipeline JSON (once per graph
fingerprint), each node call's batch size, a failed item's inputs; and indexes for the runs
list filtered by pipeline or status.

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
    op.create_table(
        "graphs",
        sa.Column("fingerprint", sa.String(64), primary_key=True),
        sa.Column("graph", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )
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
    op.drop_table("graphs")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("mode")

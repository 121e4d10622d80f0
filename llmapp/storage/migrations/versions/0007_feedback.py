"""Feedback on replies: a thumbs up or down and an optional corrected answer,
with the conversation before the reply.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("page", sa.Text, nullable=False),
        sa.Column("conversation_id", sa.Text),
        sa.Column("rating", sa.Integer),
        sa.Column("correction", sa.Text),
        sa.Column("context", sa.Text, nullable=False),
        sa.Column("reply", sa.Text, nullable=False),
        sa.Column("model", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_feedback_updated_at", "feedback", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_updated_at", "feedback")
    op.drop_table("feedback")

"""Messages keep their sources and tool steps (stages 3, 5 and 6).

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
    op.add_column("messages", sa.Column("extra", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("extra")

"""Which page a conversation belongs to, so each chat page lists its own
(the Agent page opened on the Memory page's conversation). Existing
conversations were the Memory page's, or the API's and the CLI's, which
list them all.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("page", sa.Text, nullable=False, server_default="memory"))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("page")

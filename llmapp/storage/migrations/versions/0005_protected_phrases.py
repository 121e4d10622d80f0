"""Protected phrases for the safety filter's output check, seeded with
well-known slogans: the list a new database starts with (fixed at this
revision).

Revision ID: 0005
Revises: 0004
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEED = [
    ("Just Do It", "Nike"), ("I'm Lovin' It", "McDonald's"), ("Think Different", "Apple"),
    ("Because You're Worth It", "L'Oréal"), ("Finger Lickin' Good", "KFC"),
    ("Taste the Rainbow", "Skittles"), ("Red Bull Gives You Wings", "Red Bull"),
    ("Melts in Your Mouth, Not in Your Hands", "M&M's"),
    ("The Ultimate Driving Machine", "BMW"), ("Have It Your Way", "Burger King"),
    ("Impossible Is Nothing", "Adidas"), ("The Happiest Place on Earth", "Disneyland"),
    ("Every Little Helps", "Tesco"), ("Open Happiness", "Coca-Cola"),
    ("Eat Fresh", "Subway"), ("Because I'm Worth It", "L'Oréal"),
    ("Connecting People", "Nokia"), ("Get a Piece of the Action", "Monopoly"),
]


def upgrade() -> None:
    table = op.create_table(
        "protected_phrases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("phrase", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    now = time.time()
    op.bulk_insert(table, [{"phrase": p, "owner": o, "created_at": now} for p, o in SEED])


def downgrade() -> None:
    op.drop_table("protected_phrases")

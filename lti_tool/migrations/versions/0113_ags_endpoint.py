"""AGS endpoint of each course and the LTI subject of each learner

Revision ID: 0113_ags
Revises: 0112
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0113_ags"
down_revision = "0112"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lti_courses") as batch:
        batch.add_column(sa.Column("ags_lineitems_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ags_lineitem_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("ags_scopes", sa.Text(), nullable=True))

    with op.batch_alter_table("learners") as batch:
        batch.add_column(sa.Column("lti_sub", sa.String(length=255), nullable=True))
        batch.create_index(
            "ix_learners_lti_sub", ["provider_id", "lms_connection_id", "lti_sub"]
        )


def downgrade() -> None:
    with op.batch_alter_table("learners") as batch:
        batch.drop_index("ix_learners_lti_sub")
        batch.drop_column("lti_sub")

    with op.batch_alter_table("lti_courses") as batch:
        for column in ("ags_scopes", "ags_lineitem_url", "ags_lineitems_url"):
            batch.drop_column(column)

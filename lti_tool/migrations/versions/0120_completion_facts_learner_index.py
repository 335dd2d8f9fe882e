"""Index completion facts by learner

Revision ID: 0120_facts_learner_index
Revises: 0119_lms_site_key
Create Date: 2026-12-05

Rule evaluation, progress pages and the learner commands read one learner's
facts by provider, LMS connection, learner and course. The only index that
matched was the one on provider_id, so each read went through every fact of the
provider. The new index starts with provider_id as well, so it replaces that one
and a stored fact still costs the same number of index entries.
"""

from alembic import op

revision = "0120_facts_learner_index"
down_revision = "0119_lms_site_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_completion_facts_learner",
        "completion_facts",
        ["provider_id", "lms_connection_id", "lms_user_id", "lms_course_id"],
    )
    op.drop_index("ix_completion_facts_provider_id", table_name="completion_facts")


def downgrade() -> None:
    op.create_index(
        "ix_completion_facts_provider_id", "completion_facts", ["provider_id"]
    )
    op.drop_index("ix_completion_facts_learner", table_name="completion_facts")

"""digest schedule filters: DAG tags, owners and dbt selectors a scheduled digest is narrowed to

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('digest_schedules', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('filters', sa.String(length=512), server_default='', nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('digest_schedules', schema=None) as batch_op:
        batch_op.drop_column('filters')

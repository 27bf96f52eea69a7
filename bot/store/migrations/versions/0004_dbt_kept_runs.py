"""dbt runs pipebot kept: per project, the latest run that built or tested

`dbt build && dbt docs generate` leaves the docs command's run_results.json; the build's results
are kept here when pipebot sees them, so no reply reads the docs run as the build.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dbt_kept_runs',
    sa.Column('project', sa.String(length=255), nullable=False),
    sa.Column('invocation_id', sa.String(length=128), nullable=False),
    sa.Column('command', sa.String(length=128), nullable=False),
    sa.Column('generated_at', sa.DateTime(), nullable=True),
    sa.Column('seen_at', sa.DateTime(), nullable=False),
    sa.Column('run', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('project', name=op.f('pk_dbt_kept_runs'))
    )


def downgrade() -> None:
    op.drop_table('dbt_kept_runs')

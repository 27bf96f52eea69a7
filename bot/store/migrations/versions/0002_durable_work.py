"""durable work: handled marks carry their result, worker heartbeats, accepted events,
an outbox without a dispatcher

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accepted_events',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_accepted_events'))
    )
    with op.batch_alter_table('accepted_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accepted_events_created_at'), ['created_at'], unique=False)

    op.create_table('workers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workers'))
    )
    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workers_heartbeat_at'), ['heartbeat_at'], unique=False)

    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('result', sa.JSON(), nullable=True))

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('worker_id', sa.String(length=64), nullable=True))
        batch_op.drop_column('locked_until')
        batch_op.create_index(batch_op.f('ix_jobs_worker_id'), ['worker_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next_attempt_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('update_ref')
        batch_op.create_index(batch_op.f('ix_outbox_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tool_calls_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tool_calls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tool_calls_created_at'))

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_created_at'))
        batch_op.add_column(sa.Column('update_ref', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=False, server_default=sa.func.now()))
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_worker_id'))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(), nullable=True))
        batch_op.drop_column('worker_id')

    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_column('result')

    with op.batch_alter_table('workers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workers_heartbeat_at'))
    op.drop_table('workers')

    with op.batch_alter_table('accepted_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accepted_events_created_at'))
    op.drop_table('accepted_events')

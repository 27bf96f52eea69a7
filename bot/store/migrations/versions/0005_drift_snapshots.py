"""drift snapshots: the warehouse catalog of the configured schemas, taken daily, and what
comparing each snapshot with the one before it found (decided once, posted from that)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drift_snapshots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('taken_at', sa.DateTime(), nullable=False),
    sa.Column('scope', sa.JSON(), nullable=True),
    sa.Column('schemas', sa.JSON(), nullable=False),
    sa.Column('relation_count', sa.Integer(), nullable=False),
    sa.Column('base_id', sa.Integer(), nullable=True),
    sa.Column('report', sa.JSON(), nullable=True),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['base_id'], ['drift_snapshots.id'], name=op.f('fk_drift_snapshots_base_id_drift_snapshots'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_snapshots')),
    sa.UniqueConstraint('key', name=op.f('uq_drift_snapshots_key'))
    )
    with op.batch_alter_table('drift_snapshots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drift_snapshots_taken_at'), ['taken_at'], unique=False)

    op.create_table('drift_relations',
    sa.Column('snapshot_id', sa.Integer(), nullable=False),
    sa.Column('schema_name', sa.String(length=255), nullable=False),
    sa.Column('table_name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['drift_snapshots.id'], name=op.f('fk_drift_relations_snapshot_id_drift_snapshots'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('snapshot_id', 'schema_name', 'table_name', name=op.f('pk_drift_relations'))
    )


def downgrade() -> None:
    op.drop_table('drift_relations')
    with op.batch_alter_table('drift_snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drift_snapshots_taken_at'))

    op.drop_table('drift_snapshots')

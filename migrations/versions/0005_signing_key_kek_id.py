"""signing_keys.kek_id: which key-encryption key sealed each private key (KEK rotation)

Existing rows keep NULL (sealed before KEK ids existed; `keys rekey` names them). The ciphertext
format is unchanged: nonce || AES-256-GCM, the kid as associated data.

Revision ID: 0005
Revises: 0003 (issue 12's tables follow in 0006; no 0004 exists)
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch_op:
        batch_op.add_column(sa.Column("kek_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch_op:
        batch_op.drop_column("kek_id")

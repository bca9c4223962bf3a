"""The store's logic, free of I/O, shared by :class:`DocStore` and :class:`AsyncDocStore`.

:class:`Core` gathers every family of plans (see :mod:`docstore._plan`): snapshot kinds,
log kinds, upkeep, and the layout (creating and upgrading a store). The sync store
drives them with ``conn.execute``, the async store with ``await conn.execute``; neither
holds logic of its own, so the two cannot drift apart.
"""

from __future__ import annotations

from ._logs import LogPlans
from ._partition import PartitionPlans
from ._plan import OnInvalid, Op, Plan, Program, Row, Rows, Stmt, T, one_statement
from ._snapshots import SnapshotPlans
from ._upkeep import UpkeepPlans

__all__ = ["Core", "OnInvalid", "Op", "Plan", "Program", "Row", "Rows", "Stmt", "T", "one_statement"]


class Core(SnapshotPlans, LogPlans, UpkeepPlans, PartitionPlans):
    """Plans for every store operation, bound to a registry and a schema."""

"""Each hot read's plan uses its index: EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL."""

from __future__ import annotations

import pytest

from mystic_trading.store import Store
from mystic_trading.store._sql import HOT_READS, for_backend


@pytest.mark.parametrize("name", sorted(HOT_READS))
async def test_hot_read_uses_its_index(store: Store, name: str) -> None:
    """The statement seeks its index; no full scan of the table."""
    sql, params, index = HOT_READS[name]
    async with store.engine.connect() as conn:
        if store.backend == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " | ".join(str(r[-1]) for r in rows)
            assert "SEARCH" in plan and "SCAN" not in plan, plan
            # SQLite names a WITHOUT ROWID table's key "PRIMARY KEY" and a rowid table's
            # key an autoindex; secondary indexes by their own name.
            if index.startswith("ix_"):
                assert index in plan, plan
            else:
                assert "PRIMARY KEY" in plan or "sqlite_autoindex" in plan, plan
        else:
            # With no rows the planner would pick a scan; forbid it so the plan shows whether
            # an index can answer at all.
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = await conn.exec_driver_sql(f"EXPLAIN {for_backend(sql, 'postgresql')}", params)
            plan = " | ".join(str(r[0]) for r in rows)
            assert f"using {index}" in plan or f"Index Scan on {index}" in plan, plan
            assert "Seq Scan" not in plan, plan

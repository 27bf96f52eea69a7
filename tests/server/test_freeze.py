"""Start-up objects are exempt from the cyclic GC (bench/bench_slack_ack.py shows why)."""

from __future__ import annotations

import gc

from handlers.server import freeze_startup_heap


def test_freeze_moves_the_heap_out_of_the_collectors_way() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()

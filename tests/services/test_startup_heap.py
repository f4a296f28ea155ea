"""What start-up built is kept out of the garbage collector's scans (runtime)."""

import gc

from sipws.runtime import YOUNG_GENERATION_THRESHOLD, freeze_startup_heap


def test_freezing_moves_the_live_heap_out_of_the_collectors_generations():
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() > before
        assert sum(gc.get_count()) < 10  # generations start again nearly empty
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)

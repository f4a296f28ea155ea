"""Log a repeated problem once per key and interval, so a flood cannot flood the log."""

import logging
import time
from collections import OrderedDict

_last: OrderedDict[str, float] = OrderedDict()
_INTERVAL = 60.0
_MAX_KEYS = 10_000


def log_once(logger: logging.Logger, key: str, message: str, *args, level=logging.WARNING) -> None:
    now = time.monotonic()
    last = _last.get(key)
    if last is not None and now - last < _INTERVAL:
        return
    _last[key] = now
    _last.move_to_end(key)
    if len(_last) > _MAX_KEYS:
        _last.popitem(last=False)
    logger.log(level, message, *args)

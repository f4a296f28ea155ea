"""Answers read from SQLite and kept in memory while they cannot have changed.

Some tables are read by nearly every request and written by nearly none: accounts (every
authenticated request), XCAP documents (every SUBSCRIBE and NOTIFY reads the presentity's
pres-rules and pidf-manipulation). On SQLite, `KeptAnswers` keeps what such reads
returned, per connection, for as long as they are current:

- SQLite's `PRAGMA data_version` changes when any other connection commits: another
  thread's (admin, REST API, XCAP), or another process's (`manage.py sipuser`). It is read
  once per engine batch (services/dbthread): while a batch is open this process holds
  the write lock, so no connection can commit; outside batches, once per lookup.
- This connection's own writes go through `Model.save()` and `delete()`, whose signals
  forget every answer of that model; after such a write inside a transaction nothing is
  kept until it ends, as it may yet roll back.

PostgreSQL (a cluster) reads every time: a change on another node would go unseen.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.db.models.signals import post_delete, post_save

from .dbthread import batch_connection, current_batch

# Answers kept per connection and kind. A presentity's XCAP documents take two (its rules'
# versions, its pidf-manipulation), so 6,000 users filled the old limit of 10,000 and
# every answer was forgotten each time round: at the limit, the oldest tenth goes.
LIMIT = 50_000


class KeptAnswers:
    """Answers that depend only on the rows of `models`, kept per SQLite connection."""

    def __init__(self, name: str, *models: type[Model]) -> None:
        self.generation = 0  # bumped by this process's writes to the models
        self._kept = f"_sipws_kept_{name}"
        self._wrote_in = f"_sipws_wrote_{name}_in"
        self._checked: tuple = (None, None, 0, None)
        _every.append(self)
        for model in models:
            uid = f"sipws-kept-{name}-{model._meta.label}"
            post_save.connect(self._forget, sender=model, dispatch_uid=uid)
            post_delete.connect(self._forget, sender=model, dispatch_uid=uid)

    def get(self, key: Any, read: Callable[[], Any]) -> Any:
        """The kept answer for `key`, or `read()`'s, kept for next time where it may be."""
        db = batch_connection() or connections[DEFAULT_DB_ALIAS]
        answers = self._current(db)
        if answers is None:
            return read()
        try:
            return answers[key]
        except KeyError:
            pass
        answer = read()
        if len(answers) >= LIMIT:
            for oldest in list(islice(answers, LIMIT // 10)):
                del answers[oldest]
        answers[key] = answer
        return answer

    def _current(self, db) -> dict | None:
        """The current answers of `db`'s connection, or None where none may be kept."""
        batch = current_batch()
        checked = self._checked  # the answers as found current earlier in this batch
        if batch is not None and checked[0] is batch and checked[1] is db:
            if checked[2] == self.generation:
                return checked[3]
        answers = self._check(db)
        self._checked = (batch, db, self.generation, answers)
        return answers

    def _check(self, db) -> dict | None:
        raw = db.connection
        if db.vendor != "sqlite" or raw is None:
            return None
        if db.in_atomic_block and getattr(db, self._wrote_in, None) is db.atomic_blocks[0]:
            return None
        version = _data_version(db, raw)
        kept = getattr(db, self._kept, None)
        if kept is None or kept[0] is not raw or kept[1:3] != (version, self.generation):
            kept = (raw, version, self.generation, {})
            setattr(db, self._kept, kept)
        return kept[3]

    def forget(self, using: str = DEFAULT_DB_ALIAS) -> None:
        """Forget every answer, for a write to the models that sends no signal."""
        self._forget(using)

    def _forget(self, using=DEFAULT_DB_ALIAS, **_) -> None:
        self.generation += 1
        db = connections[using]
        if db.in_atomic_block:  # the outermost block: its transaction may yet roll back
            setattr(db, self._wrote_in, db.atomic_blocks[0])


_every: list[KeptAnswers] = []


def forget_everything() -> None:
    """Forget every answer kept in this process, for a write on this connection that
    sends no signal (the test database's flush between tests)."""
    for kept in _every:
        kept.generation += 1


def _data_version(db, raw) -> int:
    """`PRAGMA data_version` of this connection, read once per engine batch."""
    batch = current_batch()
    seen = getattr(db, "_sipws_data_version", None)
    if batch is not None and seen is not None and seen[0] is raw and seen[1] is batch:
        return seen[2]
    with db.wrap_database_errors:
        version = raw.execute("PRAGMA data_version").fetchone()[0]
    db._sipws_data_version = (raw, batch, version)
    return version

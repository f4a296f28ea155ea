"""Hot-path row access in plain SQL, for the few statements every request runs.

Building a query through the ORM costs 10-15 times what SQLite takes to run it (about
400 µs against 30 µs for one indexed lookup on this machine), and a PUBLISH or SUBSCRIBE
runs a dozen. `Table` writes those statements once from the model's metadata, runs them
on Django's own connection (same transaction, same thread) and still hands back model
instances, with values converted exactly as the ORM converts them, for SQLite and
PostgreSQL alike. No save or delete signal fires here (the models it serves have no
receivers); init signals fire only for a model someone listens to.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import signals
from django.db.models.base import ModelState
from django.utils import timezone

from .dbthread import batch_connection
from .settingcache import setting


def _db():
    return batch_connection() or connections[DEFAULT_DB_ALIAS]


def quote(name: str) -> str:
    return _db().ops.quote_name(name)


class Table:
    """Plain-SQL SELECT/INSERT/UPDATE/DELETE on one model's table.

    `where` clauses name columns and use %s placeholders, as in `cursor.execute`.
    """

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = model._meta.concrete_fields
        self.by_name = {field.name: field for field in self.fields}
        self.name = quote(model._meta.db_table)
        self.columns = ", ".join(quote(f.column) for f in self.fields)
        self.attnames = [field.attname for field in self.fields]
        self.pk_column = quote(model._meta.pk.column)
        self.quoted = {field.name: quote(field.column) for field in self.fields}
        self.auto_now_names = [f.name for f in self.fields if getattr(f, "auto_now", False)]
        self.insert_fields = [f for f in self.fields if not f.primary_key]
        self.insert_head = (
            f"INSERT INTO {self.name} ({', '.join(quote(f.column) for f in self.insert_fields)})"
        )
        self.insert_row = f"({_marks(self.insert_fields)})"
        self._selects: dict[tuple, str] = {}
        self._upserts: dict[tuple, str] = {}

    def new(self, **values: Any) -> models.Model:
        """A new instance to `insert()`: `Model(**values)`, defaults included, without its
        walk over kwargs and fields and its init signals (nobody receives them here)."""
        if self._init_has_receivers or self._has_relations:
            return self.model(**values)
        fixed, computed, attnames = self._defaults
        attributes = dict(fixed)
        for name, value in values.items():
            attname = attnames.get(name)
            if attname is None:
                raise TypeError(f"{self.model.__name__} has no field {name!r}")
            attributes[attname] = value
        for name, attname, make in computed:
            if name not in values:
                attributes[attname] = make()
        instance = self.model.__new__(self.model)
        instance.__dict__.update(attributes)
        instance._state = ModelState()
        return instance

    @cached_property
    def _defaults(self) -> tuple[dict[str, Any], list[tuple[str, str, Any]], dict[str, str]]:
        """(attname → default, for defaults that are the same immutable value each time;
        (name, attname, maker) for defaults made anew each time (a callable, or a
        mutable value); name → attname)."""
        fixed, computed = {}, []
        for field in self.fields:
            default = field.get_default()
            if field.default is timezone.now:
                computed.append((field.name, field.attname, _now))
            elif callable(field.default) or not isinstance(default, _IMMUTABLE):
                computed.append((field.name, field.attname, field.get_default))
            else:
                fixed[field.attname] = default
        return fixed, computed, {field.name: field.attname for field in self.fields}

    @cached_property
    def _has_relations(self) -> bool:
        return any(field.is_relation for field in self.fields)

    def select(
        self,
        where: str,
        params: list,
        *,
        order: str = "",
        limit: int | None = None,
        for_update: bool = False,
    ) -> list:
        db = _db()
        key = (where, order, limit, for_update and db.features.has_select_for_update)
        sql = self._selects.get(key) or self._select_sql(*key)
        return [self._instance(db, row) for row in _run(db, sql, _adapt(db, params), True)]

    def _select_sql(self, where: str, order: str, limit: int | None, for_update: bool) -> str:
        """The SELECT for these clauses, written once: its text is also the key of the
        sqlite3 module's statement cache, and an f-string per call was a new string to
        hash each time."""
        sql = f"SELECT {self.columns} FROM {self.name} WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        if for_update:
            sql += " FOR UPDATE"
        if len(self._selects) < _MAX_STATEMENTS:
            self._selects[(where, order, limit, for_update)] = sql
        return sql

    def first(self, where: str, params: list, **options) -> Any:
        found = self.select(where, params, limit=1, **options)
        return found[0] if found else None

    def count(self, where: str, params: list) -> int:
        return self.execute(f"SELECT COUNT(*) FROM {self.name} WHERE {where}", params)[0][0]

    def delete(self, where: str, params: list) -> int:
        return self.execute(f"DELETE FROM {self.name} WHERE {where}", params)

    def delete_ids(self, ids: Iterable[int]) -> int:
        ids = list(ids)
        return self.delete(f"{self.pk_column} IN ({_marks(ids)})", ids) if ids else 0

    def update(self, values: dict[str, Any], where: str, params: list) -> int:
        """UPDATE the named fields (auto_now ones too, as Model.save would)."""
        db = _db()
        values = {**self._auto_now(), **values}
        assignments = ", ".join(f"{self.quoted[name]} = %s" for name in values)
        prepare = self._preparers(db)
        prepared = [prepare[name](v, db) for name, v in values.items()]
        sql = f"UPDATE {self.name} SET {assignments} WHERE {where}"
        return self.execute(sql, prepared + params)

    def save_fields(self, instance: models.Model, *names: str) -> None:
        """Write these fields of a loaded instance: Model.save(update_fields=...), cheaper."""
        stamped = self._auto_now()
        for name, now in stamped.items():
            setattr(instance, self.by_name[name].attname, now)
        names = (*names, *stamped)
        values = {name: getattr(instance, self.by_name[name].attname) for name in names}
        self.update(values, f"{self.pk_column} = %s", [instance.pk])

    def save(self, instance: models.Model, *names: str) -> None:
        """INSERT a new instance, or write these fields of a stored one."""
        if instance._state.adding:
            self.insert(instance)
        else:
            self.save_fields(instance, *names)

    def increment(self, name: str, ids: list[int]) -> None:
        """Add one to a counter column of these rows, in the database (no lost updates)."""
        if ids:
            column = self.quoted[name]
            sql = f"UPDATE {self.name} SET {column} = {column} + 1 WHERE {self.pk_column} IN "
            self.execute(sql + f"({_marks(ids)})", ids)

    def insert(self, instance: models.Model) -> models.Model:
        """INSERT a new instance (defaults and auto_now applied as save() would); set its pk."""
        db = _db()
        values = self._insert_values([instance], db)
        sql = f"{self.insert_head} VALUES {self.insert_row}"
        if db.features.can_return_columns_from_insert:
            instance.pk = _run(db, f"{sql} RETURNING {self.pk_column}", values, True)[0][0]
        else:
            with db.cursor() as cursor:
                cursor.execute(sql, values)
                instance.pk = cursor.lastrowid
        instance._state.adding = False
        instance._state.db = db.alias
        return instance

    def upsert(
        self,
        fields: tuple[str, ...],
        rows: list[tuple],
        unique: tuple[str, ...],
        update: tuple[str, ...],
    ) -> None:
        """INSERT `rows`, each the values of `fields` in that order (as `execute` takes
        values: no defaults or auto_now applied), or UPDATE the `update` fields where a
        row with the same `unique` fields exists. Values, not model instances: making an
        instance per row cost more than the statement."""
        if not rows:
            return
        key = (fields, len(rows), unique, update)
        sql = self._upserts.get(key) or self._upsert_sql(*key)
        self.execute(sql, [value for row in rows for value in row])

    def _upsert_sql(
        self, fields: tuple[str, ...], rows: int, unique: tuple[str, ...], update: tuple[str, ...]
    ) -> str:
        """The upsert of `rows` rows, written once per shape; the ON CONFLICT clause is the
        same in SQLite and PostgreSQL."""
        quoted = self.quoted
        row = f"({_marks(fields)})"
        assignments = ", ".join(f"{quoted[name]} = EXCLUDED.{quoted[name]}" for name in update)
        sql = (
            f"INSERT INTO {self.name} ({', '.join(quoted[name] for name in fields)}) "
            f"VALUES {', '.join([row] * rows)} "
            f"ON CONFLICT ({', '.join(quoted[name] for name in unique)}) "
            f"DO UPDATE SET {assignments}"
        )
        if len(self._upserts) < _MAX_STATEMENTS:
            self._upserts[(fields, rows, unique, update)] = sql
        return sql

    def _insert_values(self, instances: list[models.Model], db) -> list:
        """The INSERT parameters, with defaults and auto_now applied as save() would."""
        plan = self._sqlite_insert_plan if _utc_sqlite(db) else None
        if plan is None:
            prepare = self._django_preparers
            return [
                prepare[f.name](f.pre_save(instance, True), db)
                for instance in instances
                for f in self.insert_fields
            ]
        read, stamped, typed, other = plan
        values = []
        for instance in instances:
            row = list(read(instance))
            for index, attname in stamped:  # auto_now: what pre_save does, minus its calls
                row[index] = now = datetime.now(UTC)
                setattr(instance, attname, now)
            for index, plain, prepare in typed:
                if type(row[index]) is not plain:
                    row[index] = prepare(row[index], db)
            for index, prepare in other:
                row[index] = prepare(row[index], db)
            values += row
        return values

    @cached_property
    def _sqlite_insert_plan(self):
        """How an instance becomes INSERT parameters on SQLite with UTC storage, in as
        few calls as the fields allow (an ActiveWatcher has twenty-two): one getter for
        every attribute; the current time stamped where `pre_save` would stamp it
        (auto_now, auto_now_add); the plain types (str for a CharField, ...) go to SQLite
        as they are, and anything else through the field's own conversion. None for a
        model with stamps of another kind, which takes the long way."""
        fields = self.insert_fields
        read = operator.attrgetter(*[f.attname for f in fields])
        if len(fields) == 1:
            read = _as_tuple(read)
        stamped, typed, other = [], [], []
        for index, field in enumerate(fields):
            if _stamps(field):
                if not isinstance(field, models.DateTimeField):
                    return None  # a stamp of another kind: save() semantics, the long way
                stamped.append((index, field.attname))
            plain = _PLAIN_TYPES.get(type(field))
            if plain is not None:
                typed.append((index, plain, field.get_db_prep_save))
            else:
                other.append((index, _sqlite_preparer(field)))
        return read, stamped, typed, other

    def _preparers(self, db) -> dict[str, Callable[[Any, Any], Any]]:
        """Per field, (value, db) → the value as the database takes it (`get_db_prep_save`)."""
        return self._sqlite_preparers if _utc_sqlite(db) else self._django_preparers

    @cached_property
    def _django_preparers(self) -> dict[str, Callable[[Any, Any], Any]]:
        return {field.name: field.get_db_prep_save for field in self.fields}

    @cached_property
    def _sqlite_preparers(self) -> dict[str, Callable[[Any, Any], Any]]:
        return {field.name: _sqlite_preparer(field) for field in self.fields}

    def execute(self, sql: str, params: list) -> Any:
        """Run one statement: the rows of a SELECT, else the number of rows changed."""
        db = _db()
        return _run(db, sql, _adapt(db, params), sql.startswith("SELECT"))

    @cached_property
    def _converters(self) -> list[tuple[int, Any, list]]:
        """The backend's and the field's from-database converters, for columns having any."""
        db = _db()
        converters = []
        for index, field in enumerate(self.fields):
            column = field.get_col(self.model._meta.db_table)
            found = db.ops.get_db_converters(column) + field.get_db_converters(db)
            if found and _utc_sqlite(db) and isinstance(field, models.DateTimeField):
                found = [_fast_sqlite_datetime(*found)] if len(found) == 1 else found
            if found:
                converters.append((index, column, found))
        return converters

    def _auto_now(self) -> dict[str, Any]:
        if not self.auto_now_names:
            return {}
        return dict.fromkeys(self.auto_now_names, _now())

    def _instance(self, db, row: tuple) -> models.Model:
        values = list(row)
        for index, column, converters in self._converters:
            for convert in converters:
                values[index] = convert(values[index], column, db)
        if self._init_has_receivers:
            return self.model.from_db(db.alias, self.attnames, values)
        # What from_db() leaves behind, without Model.__init__'s walk over the fields
        # and its two signals (which nobody receives for these models).
        instance = self.model.__new__(self.model)
        instance.__dict__.update(zip(self.attnames, values, strict=True))
        instance._state = state = ModelState()
        state.adding, state.db = False, db.alias
        return instance

    @cached_property
    def _init_has_receivers(self) -> bool:
        return signals.pre_init.has_listeners(self.model) or signals.post_init.has_listeners(
            self.model
        )


def _utc_sqlite(db) -> bool:
    return db.vendor == "sqlite" and setting("USE_TZ") and db.timezone_name == "UTC"


# Fields whose Python values SQLite takes as they are, when of exactly this type; anything
# else (None, an enum member, a string for a number) goes through Django's conversion.
_PLAIN_TYPES = {
    models.CharField: str,
    models.TextField: str,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.BigIntegerField: int,
    models.BooleanField: bool,
    models.FloatField: float,
}


def _stamps(field: models.Field) -> bool:
    """Whether `field.pre_save` sets a value (auto_now, auto_now_add) instead of only
    reading the instance's attribute."""
    if type(field).pre_save is models.Field.pre_save:
        return False
    if isinstance(field, models.DateField | models.TimeField):
        return field.auto_now or field.auto_now_add
    return True


def _now() -> datetime:
    """`timezone.now()`, without its read of the lazy settings object."""
    return datetime.now(UTC) if setting("USE_TZ") else datetime.now()


def _as_tuple(getter):
    return lambda instance: (getter(instance),)


_IMMUTABLE = (str, int, float, bool, bytes, type(None))


def _sqlite_preparer(field: models.Field) -> Callable[[Any, Any], Any]:
    """`field.get_db_prep_save` on SQLite with UTC storage, minus its calls in the common
    cases: several µs a field, and the INSERT of a subscription has twenty."""
    django_prepare = field.get_db_prep_save
    plain = _PLAIN_TYPES.get(type(field))
    if plain is not None:

        def prepare(value, db):
            return value if type(value) is plain else django_prepare(value, db)

        return prepare
    if type(field) is models.DateTimeField:

        def prepare_datetime(value, db):
            if type(value) is datetime and value.tzinfo is UTC:
                return _sqlite_text(value)
            return django_prepare(value, db)

        return prepare_datetime
    return django_prepare


def _sqlite_text(value: datetime) -> str:
    """An aware UTC datetime as Django stores it in SQLite: naive UTC, `str()` form
    (which is `isoformat(" ")`, here less its "+00:00")."""
    return value.isoformat(" ")[:-6]


def _fast_sqlite_datetime(django_converter):
    """SQLite keeps aware datetimes as naive UTC text; `fromisoformat` reads it ten times
    faster than Django's regular expression (a fan-out reads three per watcher row). The
    sqlite3 module may have read it already (Django's "datetime" converter): then only
    the UTC zone is added."""

    def convert(value, expression, connection):
        if type(value) is str:
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return django_converter(value, expression, connection)
        if type(value) is datetime:
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return django_converter(value, expression, connection)

    return convert


_MAX_STATEMENTS = 256  # statement texts kept per table (IN lists vary in length)


def _run(db, sql: str, params: list, fetch: bool):
    """Run one statement on `db` (`params` as the database takes them): its rows when
    `fetch`, else the number of rows it changed.

    On SQLite, where nothing watches the queries (DEBUG, tests capturing them, execute
    wrappers), it goes straight to the sqlite3 connection: Django's cursor wrapper costs
    about ten times what SQLite takes for an indexed lookup (async and thread checks,
    error wrapping, and a regular expression turning each `%s` into `?`). These
    statements have no literal `%`, so their placeholders are swapped once and kept.
    Errors still surface as Django's, and a broken transaction still refuses statements.
    """
    raw = db.connection
    if raw is None or db.needs_rollback or not _direct(db):
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if fetch else cursor.rowcount
    try:
        cursor = raw.execute(_qmark(sql), params)
        return cursor.fetchall() if fetch else cursor.rowcount
    except Exception:
        with db.wrap_database_errors:
            raise


def _direct(db) -> bool:
    queries_logged = db.force_debug_cursor or setting("DEBUG")  # db.queries_logged
    return db.vendor == "sqlite" and not queries_logged and not db.execute_wrappers


@lru_cache(maxsize=1024)  # the statements are few and fixed, bar IN (...) lists
def _qmark(sql: str) -> str:
    if "%%" in sql:
        raise ValueError("statements in rows.py take no literal %")
    return sql.replace("%s", "?")


def _marks(items: list) -> str:
    return ", ".join(["%s"] * len(items))


def _adapt(db, params: list) -> list:
    """Datetimes as the backend stores them (SQLite: naive UTC text)."""
    return [_adapt_one(db, p) if isinstance(p, datetime) else p for p in params]


def _adapt_one(db, value: datetime):
    if value.tzinfo is UTC and _utc_sqlite(db):
        return _sqlite_text(value)
    return db.ops.adapt_datetimefield_value(value)

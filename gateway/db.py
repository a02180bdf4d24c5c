"""The database handle: one proxy, bound in create_app to SQLite or PostgreSQL."""
import fcntl
import logging
import threading
import time
from urllib.parse import urlsplit

from peewee import DatabaseProxy, OperationalError, SqliteDatabase, Value
from playhouse.db_url import connect, parse

log = logging.getLogger(__name__)

database = DatabaseProxy()


def sqlite_pragmas(busy_timeout_ms):
    """Pragmas for the embedded SQLite file."""
    return {
        # First: peewee applies these in order, and the others may need to wait for a lock.
        "busy_timeout": busy_timeout_ms,
        "journal_mode": "wal",
        # With WAL, NORMAL survives a process crash (kill -9); only an OS crash can lose
        # the last commits.
        "synchronous": "normal",
        "foreign_keys": 1,
        "cache_size": -64000,
        # MLflow's LIKE is case-sensitive on every backend (MLflow sets the same pragma).
        "case_sensitive_like": 1,
    }


def open_database(url, busy_timeout_ms=10000):
    """Open (lazily) the database a URL names; SQLite gets its pragmas and write locking."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("sqlite"):
        # IMMEDIATE: every transaction here writes, so take the write lock at BEGIN; a
        # deferred BEGIN that later upgrades its lock can fail with "database is locked".
        return QueuedWritersSqlite(**parse(url), pragmas=sqlite_pragmas(busy_timeout_ms),
                                   timeout=busy_timeout_ms / 1000, lock_type="IMMEDIATE")
    if scheme in ("postgres", "postgresql"):
        url = url.replace(scheme, "postgresql+pool", 1)
    return connect(url)


class QueuedWritersSqlite(SqliteDatabase):
    """SQLite whose write transactions queue on a file lock instead of polling for SQLite's.

    SQLite has one write lock per file, and a connection that finds it taken sleeps and
    retries (1, 2, 5, 10 ... ms), so under contention writers sleep past the moment the lock
    frees. Every transaction here first takes an exclusive flock on `<file>.writers`, where
    the kernel wakes the next writer as soon as the holder commits (across threads,
    workers and processes on the host; the kernel drops it if the holder dies). SQLite's own
    lock, still taken by BEGIN IMMEDIATE, keeps guarding writes that come without a
    transaction (e.g. the sqlite3 shell).

    A writer waits at most `timeout` seconds in all, the queue and SQLite's busy wait
    together: past that, BEGIN fails with "database is locked" (a 503 with Retry-After).
    """

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self.wait_seconds = kwargs.get("timeout", 5.0)
        # A lock file per thread (flock belongs to an open file); closed when the thread ends.
        self._writers = threading.local()

    def begin(self, lock_type=None):
        waited = self._queue()
        try:
            if waited:  # what is left of the wait is SQLite's own busy timeout
                remaining = max(1, int((self.wait_seconds - waited) * 1000))
                self.connection().execute(f"PRAGMA busy_timeout = {remaining}")
            super().begin(lock_type)
        except BaseException:
            self._leave()
            raise
        finally:
            if waited:
                self.connection().execute(
                    f"PRAGMA busy_timeout = {int(self.wait_seconds * 1000)}")

    def commit(self):
        try:
            super().commit()
        finally:
            self._leave()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._leave()

    def _queue(self):
        """Take the writers' lock; returns the seconds waited for it."""
        if self.database == ":memory:" or self.database.startswith("file::memory:"):
            return 0.0
        lock = getattr(self._writers, "file", None)
        if lock is None:
            lock = self._writers.file = open(f"{self.database}.writers", "ab")  # noqa: SIM115
        waited = _flock_within(lock, self.wait_seconds)
        self._writers.held = True
        return waited

    def _leave(self):
        if getattr(self._writers, "held", False):
            self._writers.held = False
            fcntl.flock(self._writers.file, fcntl.LOCK_UN)


def _flock_within(lock, seconds):
    """Wait for an exclusive flock on `lock` for at most `seconds`; the seconds it took (0.0
    when it was free at once, the common case).

    flock has no timeout, so the wait polls with LOCK_NB, sleeping 50 us at first and at most
    1 ms between tries (a freed lock is taken within a millisecond; a helper thread blocking
    in flock instead cost a thread start per contended write, half the create throughput).
    OperationalError "database is locked" at the deadline.
    """
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 0.0
    except BlockingIOError:
        pass
    started = time.monotonic()
    deadline, pause = started + seconds, 0.00005
    while True:
        time.sleep(pause)
        pause = min(pause * 2, 0.001)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return time.monotonic() - started
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OperationalError(f"database is locked: waited {seconds:g} s for the "
                                       "writers' queue") from None


def is_sqlite():
    """Whether the bound database is SQLite."""
    return isinstance(database.obj, SqliteDatabase)


def init_app(app):
    """Bind the proxy to DATABASE_URL; each request uses its thread's connection.

    Connections open on first use (Peewee's autoconnect), so requests that never touch the
    database (/health, /metrics) answer while it is down, and a failure to connect is an
    error of the request that needed it (a 503 in its face's format). The pipeline calls
    release() after every request.
    """
    database.initialize(open_database(app.config["DATABASE_URL"],
                                      app.config["SQLITE_BUSY_TIMEOUT_MS"]))


def release():
    """After a request: undo a transaction left open and give the connection back (never
    raises). A SQLite connection stays open for the thread's next request: opening one and
    setting its pragmas costs more than most requests. PostgreSQL connections go back to the
    pool."""
    try:
        if database.in_transaction():  # a transaction left open: undo it
            database.rollback()
        if not is_sqlite() and not database.is_closed():
            database.close()
    except Exception:  # a dead connection: drop it, so the worker's next request gets a new one
        log.warning("dropping a broken database connection", exc_info=True)
        discard_connection()
    finally:
        while database.transaction_depth():  # forget transactions nobody will close
            database.pop_transaction()


def discard_connection():
    """Close this thread's connection for good (not back to a pool); never raises."""
    while database.transaction_depth():
        database.pop_transaction()
    try:
        if hasattr(database.obj, "manual_close"):
            database.manual_close()
        else:
            database.close()
    except Exception:  # already unusable; what matters is that it is forgotten
        log.debug("closing a broken connection failed", exc_info=True)
        database._state.reset()


class prepared:
    """A Peewee query built once per database and run with fresh parameters.

    Compiling a query to SQL costs more than running it on the hot read paths, so
    `build(*markers)` is called once; each call then swaps the markers in the compiled
    parameters for real values and returns the query's usual rows (joined models included).
    Only for queries of a fixed shape (no IN lists of varying length), and values must be
    what the driver takes as they are (str, int): field conversions are not applied.
    `rows="tuples"` or `rows="dicts"` (keyed by column name) skip Peewee's row wrapping, which
    costs more than a short query: for columns that need no conversion (ints, text).
    """

    def __init__(self, build, rows=None):
        self.build, self.rows = build, rows
        self.compiled = {}

    def __call__(self, *values):
        query, sql, params, slots = self._compile(len(values))
        params = list(params)
        for value, indexes in zip(values, slots):
            for index in indexes:
                params[index] = value
        cursor = database.execute_sql(sql, params)
        if self.rows == "tuples":
            return cursor.fetchall()
        if self.rows == "dicts":
            return _dicts(cursor)
        return list(query._get_cursor_wrapper(cursor))

    def _compile(self, arity):
        key = id(database.obj)
        if key not in self.compiled:
            markers = [_Marker() for _ in range(arity)]
            # converter=False keeps fields from coercing the markers (str(marker), int(...)).
            query = self.build(*[Value(marker, converter=False) for marker in markers])
            sql, params = query.sql()
            slots = [[i for i, p in enumerate(params) if p is m] for m in markers]
            if not all(slots):
                raise ValueError("a prepared query lost one of its parameters")
            self.compiled = {key: (query, sql, params, slots)}
        return self.compiled[key]


class prepared_insert:
    """The INSERT of one `model` row, prepared: every column but the key, in the model's order,
    so a new column needs no edit here.

    A column a call leaves out gets its field's default, a callable one called for each row (a
    prepared query would freeze it). With on_conflict_ignore, a row the unique keys refuse is
    not inserted and the call returns []; else [(id,)]. Values must be what the driver takes
    as they are (see prepared).
    """

    def __init__(self, model, on_conflict_ignore=False):
        self.fields = [field for field in model._meta.sorted_fields if not field.primary_key]
        self.names = {field.name for field in self.fields}

        def build(*markers):
            query = model.insert(dict(zip(self.fields, markers)))
            if on_conflict_ignore:
                query = query.on_conflict_ignore()
            return query.returning(model._meta.primary_key)
        self.query = prepared(build, rows="tuples")

    def __call__(self, **values):
        if not values.keys() <= self.names:
            raise TypeError(f"no such columns: {sorted(values.keys() - self.names)}")
        return self.query(*(values[field.name] if field.name in values
                            else field.default() if callable(field.default) else field.default
                            for field in self.fields))


def _dicts(cursor):
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def dict_rows(query):
    """A query's rows as dicts keyed by column name, without Peewee's row wrapping."""
    return _dicts(database.execute_sql(*query.sql()))


class _Marker:
    """Stands for a parameter while a prepared query is compiled."""


class prepared_many:
    """A family of prepared queries over a list of values, one per length of the list.

    `build(values)` gets a list of markers (for `column.in_(values)`); at most `limit`
    lengths are kept compiled.
    """

    def __init__(self, build, limit=64, rows=None):
        self.build, self.limit, self.rows, self.by_length = build, limit, rows, {}

    def __call__(self, values):
        length = len(values)
        if length not in self.by_length:
            if len(self.by_length) >= self.limit:
                self.by_length.clear()
            self.by_length[length] = prepared(lambda *markers: self.build(list(markers)),
                                              rows=self.rows)
        return self.by_length[length](*values)

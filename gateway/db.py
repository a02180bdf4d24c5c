"""The database handle: one proxy, bound in create_app to SQLite or PostgreSQL."""
from urllib.parse import urlsplit

from peewee import DatabaseProxy, SqliteDatabase, Value
from playhouse.db_url import connect

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


def open_database(url, busy_timeout_ms=30000):
    """Open (lazily) the database a URL names; SQLite gets its pragmas and write locking."""
    scheme = urlsplit(url).scheme
    if scheme.startswith("sqlite"):
        # IMMEDIATE: every transaction here writes, so take the write lock at BEGIN; a
        # deferred BEGIN that later upgrades its lock can fail with "database is locked".
        return connect(url, pragmas=sqlite_pragmas(busy_timeout_ms),
                       timeout=busy_timeout_ms / 1000, lock_type="IMMEDIATE")
    if scheme in ("postgres", "postgresql"):
        url = url.replace(scheme, "postgresql+pool", 1)
    return connect(url)


def is_sqlite():
    """Whether the bound database is SQLite."""
    return isinstance(database.obj, SqliteDatabase)


def init_app(app):
    """Bind the proxy to DATABASE_URL; each request uses its thread's connection."""
    database.initialize(open_database(app.config["DATABASE_URL"],
                                      app.config["SQLITE_BUSY_TIMEOUT_MS"]))
    app.before_request(_open)
    # teardown, not after_request: it runs after errors too.
    app.teardown_request(_release)


def _open():
    database.connect(reuse_if_open=True)


def _release(exc):
    # A SQLite connection stays open for the thread's next request: opening one and setting
    # its pragmas costs more than most requests. PostgreSQL connections go back to the pool.
    if database.in_transaction():
        database.rollback()
    if not is_sqlite() and not database.is_closed():
        database.close()


class prepared:
    """A Peewee query built once per database and run with fresh parameters.

    Compiling a query to SQL costs more than running it on the hot read paths, so
    `build(*markers)` is called once; each call then swaps the markers in the compiled
    parameters for real values and returns the query's usual rows (joined models included).
    Only for queries of a fixed shape (no IN lists of varying length), and values must be
    what the driver takes as they are (str, int): field conversions are not applied.
    """

    def __init__(self, build):
        self.build = build
        self.compiled = {}

    def __call__(self, *values):
        query, sql, params, slots = self._compile(len(values))
        params = list(params)
        for value, indexes in zip(values, slots):
            for index in indexes:
                params[index] = value
        cursor = database.execute_sql(sql, params)
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


class _Marker:
    """Stands for a parameter while a prepared query is compiled."""


class prepared_many:
    """A family of prepared queries over a list of values, one per length of the list.

    `build(values)` gets a list of markers (for `column.in_(values)`); at most `limit`
    lengths are kept compiled.
    """

    def __init__(self, build, limit=64):
        self.build, self.limit, self.by_length = build, limit, {}

    def __call__(self, values):
        length = len(values)
        if length not in self.by_length:
            if len(self.by_length) >= self.limit:
                self.by_length.clear()
            self.by_length[length] = prepared(lambda *markers: self.build(list(markers)))
        return self.by_length[length](*values)

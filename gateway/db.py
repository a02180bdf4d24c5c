"""The database handle: one proxy, bound in create_app to SQLite or PostgreSQL."""
from urllib.parse import urlsplit

from peewee import DatabaseProxy, SqliteDatabase
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
    """Bind the proxy to DATABASE_URL and open/close a connection around each request."""
    database.initialize(open_database(app.config["DATABASE_URL"],
                                      app.config["SQLITE_BUSY_TIMEOUT_MS"]))
    app.before_request(_open)
    # teardown, not after_request: it runs after errors too.
    app.teardown_request(_close)


def _open():
    database.connect(reuse_if_open=True)


def _close(exc):
    if not database.is_closed():
        database.close()

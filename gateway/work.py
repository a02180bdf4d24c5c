"""The unit of work: a request's writes, in plain sight.

Services write inside `with work.write():` and report what they created with
`work.created(kind, row_id)`. Without a unit of work (the CLI, a background thread, a request
the pipeline gave none), each `write()` is a transaction of its own, as `database.atomic()`.

The pipeline gives a request a UnitOfWork when its writes must land together with its retry
token (gateway.pipeline). Its transaction begins at the request's first `write()` (so parsing
and checks run outside SQLite's write lock), every `write()` inside it is a savepoint, and the
pipeline commits or rolls it back after the view. What the request created is on
`UnitOfWork.created`, for the retry token to remember.
"""
from gateway import context
from gateway.db import database, is_sqlite


class UnitOfWork:
    """One transaction around a request's writes, begun at its first write."""

    def __init__(self, lock_timeout_ms=None):
        # PostgreSQL only: how long a write may wait for a row lock (SQLite waits for its write
        # lock up to its busy timeout instead).
        self.lock_timeout_ms = lock_timeout_ms
        self.transaction = None
        self.created = None  # (kind, row_id): the first resource the request created
        self.finished = False

    @property
    def begun(self):
        return self.transaction is not None

    def begin(self):
        """Begin the transaction (at the first write, or to store what the request answered)."""
        self.transaction = database.atomic()
        self.transaction.__enter__()
        if self.lock_timeout_ms is not None and not is_sqlite():
            database.execute_sql(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}")

    def write(self):
        """A savepoint in the unit's transaction (begun now if need be)."""
        if self.transaction is None:
            self.begin()
        return database.atomic()

    def note_created(self, kind, row_id):
        if self.created is None:
            self.created = (kind, row_id)

    def commit(self):
        self.finished = True
        self.transaction.__exit__(None, None, None)

    def rollback(self):
        """Undo everything the unit wrote (nothing if it never began or already ended)."""
        if self.finished or self.transaction is None:
            self.finished = True
            return
        self.finished = True
        if database.transaction_depth():
            self.transaction.__exit__(_Rollback, _Rollback(), None)


class _Rollback(Exception):
    """Marks the unit's transaction for rollback."""


def write():
    """Where a service writes: a savepoint in the request's unit of work, or a transaction of
    its own when there is none."""
    unit = context.current().work
    return unit.write() if unit is not None and not unit.finished else database.atomic()


def created(kind, row_id):
    """Tell the request's unit of work (if any) what a service created: kind is
    "registered_model" or "model_version", row_id its primary key."""
    unit = context.current().work
    if unit is not None:
        unit.note_created(kind, row_id)

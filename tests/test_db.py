"""The SQLite handle: write transactions queue on a file lock instead of polling SQLite's."""
import fcntl
import os
import threading
import time

import pytest
from peewee import OperationalError

from gateway.db import open_database


def test_sqlite_writers_wait_their_turn(tmp_path):
    path = tmp_path / "queue.db"
    db = open_database(f"sqlite:///{path}", busy_timeout_ms=5000)
    db.execute_sql("CREATE TABLE t (x INTEGER)")
    holding = threading.Event()

    def hold_the_write_lock():
        with db.atomic():
            db.execute_sql("INSERT INTO t VALUES (1)")
            holding.set()
            time.sleep(0.3)
        db.close()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    holding.wait()
    # The file lock makes this writer wait until the holder commits, then go on.
    with db.atomic():
        db.execute_sql("INSERT INTO t VALUES (2)")
    holder.join()
    assert db.execute_sql("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    assert os.path.exists(f"{path}.writers")


def test_a_writer_waits_at_most_the_busy_timeout_in_all(tmp_path):
    path = tmp_path / "frozen.db"
    db = open_database(f"sqlite:///{path}", busy_timeout_ms=300)
    db.execute_sql("CREATE TABLE t (x INTEGER)")
    with open(f"{path}.writers", "ab") as frozen:  # a writer frozen while holding its turn
        fcntl.flock(frozen, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            _write(db, 1)
        waited = time.monotonic() - started
        fcntl.flock(frozen, fcntl.LOCK_UN)
    assert 0.3 <= waited < 5
    # The abandoned wait does not keep the turn: the next writer goes straight in.
    started = time.monotonic()
    _write(db, 2)
    assert time.monotonic() - started < 5
    assert db.execute_sql("SELECT x FROM t").fetchall() == [(2,)]


def test_a_failed_transaction_lets_the_next_writer_in(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'fail.db'}", busy_timeout_ms=50)
    db.execute_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
    try:
        with db.atomic():
            db.execute_sql("INSERT INTO t VALUES (1)")
            raise RuntimeError("the action failed")
    except RuntimeError:
        pass
    other = threading.Thread(target=lambda: (db.execute_sql("SELECT 1"), _write(db, 2)))
    other.start()
    other.join(timeout=5)
    assert not other.is_alive()  # the rolled-back transaction released the lock
    assert db.execute_sql("SELECT x FROM t").fetchall() == [(2,)]


def _write(db, value):
    with db.atomic():
        db.execute_sql("INSERT INTO t VALUES (?)", (value,))


def test_a_transaction_left_open_by_a_request_is_rolled_back_and_forgotten(app, client):
    from gateway.db import database
    from gateway.models import Workspace

    @app.get("/leaky")
    def leaky():
        database.atomic().__enter__()  # a bug: entered, never exited
        Workspace.create(name="half-written")
        return {}

    assert client.get("/leaky").status_code == 200
    # The next request starts clean: nothing of the leak was kept, and its writes commit.
    assert client.post("/api/3.0/mlflow/workspaces", json={"name": "whole"}).status_code == 201
    with app.app_context(), database.connection_context():
        names = {w.name for w in Workspace.select()}
    assert "whole" in names and "half-written" not in names


def test_each_writing_thread_gets_one_lock_file_closed_when_it_ends(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'threads.db'}")
    db.execute_sql("CREATE TABLE t (x INTEGER)")
    before = len(os.listdir("/proc/self/fd"))
    for value in range(20):
        writer = threading.Thread(target=lambda: (_write(db, value), db.close()))
        writer.start()
        writer.join()
    assert len(os.listdir("/proc/self/fd")) <= before + 1
    assert db.execute_sql("SELECT count(*) FROM t").fetchone() == (20,)


def test_upgrade_rebuilds_an_old_sqlite_registry_with_ids_never_reused(tmp_path):
    from gateway import migrations
    from gateway.db import database
    from gateway.models import ModelVersion, RegisteredModel, SchemaVersion
    path = tmp_path / "old.db"
    database.initialize(open_database(f"sqlite:///{path}"))
    try:
        migrations.upgrade()
        # Make it a database of before the change: keys without AUTOINCREMENT, step 6 not run.
        migrations.foreign_keys(False)
        with database.atomic():
            for model in (RegisteredModel, ModelVersion):
                migrations.rebuild_sqlite_table(model, lambda sql: sql.replace(
                    " AUTOINCREMENT", ""))
            SchemaVersion.delete().where(SchemaVersion.version >= 6).execute()
        migrations.foreign_keys(True)
        database.execute_sql("INSERT INTO registered_model (workspace, name, description, "
                             "creation_timestamp, last_updated_timestamp, last_version) "
                             "VALUES ('default', 'kept', '', 1, 1, 1)")
        database.execute_sql("INSERT INTO model_version (registered_model_id, version, "
                             "creation_timestamp, last_updated_timestamp, description, "
                             "current_stage, source, run_id, run_link, status) "
                             "VALUES (1, 1, 1, 1, '', 'None', 's3://a/m', '', '', 'READY')")
        assert "AUTOINCREMENT" not in _table_sql(database, "registered_model")

        assert migrations.upgrade()[0] == 6
        for table in ("registered_model", "model_version"):
            assert "AUTOINCREMENT" in _table_sql(database, table)
        assert database.execute_sql("PRAGMA foreign_key_check").fetchall() == []
        assert [(v.registered_model.name, v.version) for v in ModelVersion.select()] == [
            ("kept", 1)]
        # The last id is not handed out again once its row is gone.
        RegisteredModel.delete().execute()  # cascades to the version
        assert ModelVersion.select().count() == 0
        assert RegisteredModel.create(workspace="default", name="new").id == 2
        assert {i.name for i in database.get_indexes("model_version")} >= {
            "model_version_registered_model_id_version"}
    finally:
        database.close()


def _table_sql(database, table):
    return database.execute_sql("SELECT sql FROM sqlite_master WHERE name = ?",
                                (table,)).fetchone()[0]


def test_upgrade_9_fills_workspace_ids_prompt_flags_and_makes_adapter_names_unique(
        tmp_path, monkeypatch, capsys):
    from gateway import migrations
    from gateway.db import database
    from gateway.models import ModelAdapter, ModelEntityDetails, RegisteredModel, Workspace
    database.initialize(open_database(f"sqlite:///{tmp_path / 'v8.db'}"))
    try:
        monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:8])
        migrations.upgrade()
        # A database of before step 9: no system workspace, no ids, adapters unscoped.
        Workspace.delete().where(Workspace.name == "system").execute()
        Workspace.update(uuid=None).execute()
        Workspace.insert(name="team", uuid=None).execute()
        first = RegisteredModel.create(workspace="team", name="m1")
        second = RegisteredModel.create(workspace="team", name="m2")
        for model in (first, second):
            ModelAdapter.insert(registered_model=model.id, workspace=None, name="a1",
                                fileset="team/a", finetuning_type="lora").execute()
        ModelEntityDetails.insert(registered_model=first.id, has_prompt=False,
                                  document='{"prompt": {"system_prompt": "hi"}}').execute()
        ModelEntityDetails.insert(registered_model=second.id, has_prompt=False,
                                  document='{"prompt": null}').execute()
        monkeypatch.undo()

        assert migrations.upgrade()[0] == 9
        ids = {w.name: w.uuid for w in Workspace.select()}
        assert set(ids) == {"default", "system", "team"} and all(ids.values())
        assert len(set(ids.values())) == 3
        adapters = [(a.workspace, a.name) for a in ModelAdapter.select().order_by(ModelAdapter.id)]
        assert adapters == [("team", "a1"), ("team", "a1-2")]
        assert "renamed a1-2" in capsys.readouterr().out
        flags = {d.registered_model_id: d.has_prompt for d in ModelEntityDetails.select()}
        assert flags == {first.id: True, second.id: False}
        assert migrations.upgrade() == []
    finally:
        database.close()


def test_a_prepared_insert_takes_every_column_of_its_model_and_fresh_defaults(app):
    # The seam the hot inserts go through: a column added to the model needs no edit there,
    # and callable defaults (now_ms) are called per row, not frozen at the first compile.
    from gateway.db import database, prepared_insert
    from gateway.models import RetryToken

    insert = prepared_insert(RetryToken, on_conflict_ignore=True)
    assert [field.name for field in insert.fields] == [
        field.name for field in RetryToken._meta.sorted_fields if field.name != "id"]
    with app.app_context(), database.connection_context():
        [(first,)] = insert(caller="ann", token="t1", fingerprint="f", expires_at=1)
        time.sleep(0.01)
        [(second,)] = insert(caller="ann", token="t2", fingerprint="f", expires_at=1)
        assert insert(caller="ann", token="t1", fingerprint="other", expires_at=1) == []
        rows = {row.token: row for row in RetryToken.select()}
        assert (rows["t1"].id, rows["t2"].id) == (first, second)
        assert rows["t2"].created_at > rows["t1"].created_at  # now_ms, called per row
        assert rows["t1"].fingerprint == "f" and rows["t1"].status is None
        with pytest.raises(TypeError, match="no such columns"):
            insert(caller="ann", tokn="t3", fingerprint="f", expires_at=1)

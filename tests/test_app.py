"""The factory, configuration layering and the `gateway` command."""
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from click.testing import CliRunner

from gateway import create_app, migrations
from gateway.cli import main
from gateway.db import database
from tests.conftest import POSTGRES_URL


def test_config_layers_defaults_then_environment_then_mapping(monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_SQLITE_BUSY_TIMEOUT_MS", "1234")
    monkeypatch.setenv("GATEWAY_MLFLOW_VERSION", "from-env")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
                      "MLFLOW_VERSION": "from-mapping"})
    assert app.config["SQLITE_BUSY_TIMEOUT_MS"] == 1234
    assert app.config["MLFLOW_VERSION"] == "from-mapping"
    assert create_app({"DATABASE_URL": "sqlite:///x.db"}).config["MLFLOW_VERSION"] == "from-env"


def test_create_app_does_not_touch_the_database(tmp_path):
    path = tmp_path / "never.db"
    create_app({"DATABASE_URL": f"sqlite:///{path}"})
    assert not path.exists()


def test_db_upgrade_command_is_idempotent(monkeypatch, tmp_path):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    first = CliRunner().invoke(main, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, ["db", "upgrade"])
    assert second.exit_code == 0 and "up to date" in second.output
    with database.connection_context():
        assert migrations.current_version() == len(migrations.MIGRATIONS)


def test_concurrent_upgrades_do_not_race(tmp_path):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'race.db'}"

    def upgrade(_):
        return subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"],
                              env={"GATEWAY_DATABASE_URL": url, "PATH": ""},
                              capture_output=True, text=True)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(upgrade, range(4)))
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results]
    create_app({"DATABASE_URL": url})
    with database.connection_context():
        assert migrations.current_version() == len(migrations.MIGRATIONS)


def test_serve_help_lists_its_options():
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in ("--host", "--port", "--workers"))

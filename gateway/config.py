"""Default settings; every one can be overridden by a GATEWAY_<NAME> environment variable."""


class Config:
    """Constants only: the environment and the mapping given to create_app override them."""

    # The embedded default: a SQLite file in the working directory, no server needed.
    DATABASE_URL = "sqlite:///gateway.db"
    # Milliseconds a SQLite writer waits for the lock before failing.
    SQLITE_BUSY_TIMEOUT_MS = 30000
    # What GET /version answers; the MLflow client only logs it.
    MLFLOW_VERSION = "3.17.2"
    # Requests bodies above this many bytes are refused before they are parsed.
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024

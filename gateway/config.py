"""Default settings; every one can be overridden by a GATEWAY_<NAME> environment variable."""


class Config:
    # A real MLflow tracking server (3.17.x, --enable-workspaces) the MLflow routes the gateway
    # does not own are forwarded to (experiments, runs, artifacts, the UI); "" = none.
    TRACKING_UPSTREAM = ""
    TRACKING_UPSTREAM_TOKEN = ""  # sent upstream as a bearer token, if set
    TRACKING_TIMEOUT_SECONDS = 60  # an upstream slower than this is a 504
    TRACKING_MAX_UPLOAD_BYTES = 5 * 1024 ** 3  # forwarded bodies (artifacts); 0 = no limit
    # Threads per worker (asgi) for forwarded calls; stay under the PostgreSQL pool's 20.
    TRACKING_THREADS = 16
    """Constants only: the environment and the mapping given to create_app override them."""

    # The embedded default: a SQLite file in the working directory, no server needed.
    DATABASE_URL = "sqlite:///gateway.db"
    # Milliseconds a SQLite writer waits in all (the writers' queue and SQLite's own lock)
    # before the request gets a 503 with Retry-After; below gunicorn's 30 s worker timeout.
    SQLITE_BUSY_TIMEOUT_MS = 10000
    # What GET /version answers; the MLflow client only logs it.
    MLFLOW_VERSION = "3.17.2"
    # Requests bodies above this many bytes are refused before they are parsed.
    MAX_CONTENT_LENGTH = 16 * 1024 * 1024
    # One JSON line per request (time, request id, workspace, principal, face, ...): true writes
    # them to stdout, "logging" sends them to the gateway.access logger, false turns them off.
    ACCESS_LOG = True
    # "none": trust every caller (local use); "required": token, Basic or OCI signature.
    AUTH = "none"
    # The host names clients reach the gateway by (e.g. ["registry.example.com"]); when set, an
    # OCI signature over another host header is refused.
    PUBLIC_HOSTS = []
    # With AUTH=required, /metrics answers this bearer token (for Prometheus) or an admin of
    # every workspace ("*"); tenants get 403.
    METRICS_TOKEN = None
    # How long each worker may reuse a bearer token's principal and a principal's role in a
    # workspace: new grants, revocations and tokens take effect within this many seconds.
    AUTH_CACHE_SECONDS = 5
    # Per-tenant (workspace) limits in the `limits` notation, e.g. "50/second;1000/minute";
    # "" = none.
    RATE_LIMIT = ""
    # Per authenticated principal, across all workspaces; "" = none (each check costs a
    # round trip to Redis).
    PRINCIPAL_RATE_LIMIT = ""
    # Per client address, for traffic no tenant vouches for: unauthenticated or refused
    # requests, and open routes (health) when AUTH=required. Such traffic never spends a
    # tenant's budget.
    ANONYMOUS_RATE_LIMIT = "20/second;600/minute"
    # Failed password checks per client address and per user name; past it, 429 before any
    # password hashing.
    LOGIN_FAILURE_LIMIT = "5/minute;30/hour"
    # Proxy addresses whose X-Forwarded-For is believed when finding a client's address.
    TRUSTED_PROXIES = []
    # Workspace name -> its own limit, e.g. {"team-a": "200/second"} (JSON in the environment).
    RATE_LIMIT_OVERRIDES = {}
    # memory:// counts per worker (each enforces its share); redis://host:6379 counts for all.
    RATE_LIMIT_STORAGE = "memory://"
    # How many worker processes share a memory:// limit (each enforces its share); "auto" takes
    # gunicorn's worker count (1 outside gunicorn).
    RATE_LIMIT_WORKERS = "auto"
    # Connect and read timeout for the Redis counter store; past it a request is admitted
    # (fail-open) and limiting resumes when Redis answers again.
    REDIS_TIMEOUT_MS = 250
    # NeMo: fileset references (fnmatch patterns, e.g. "hf-mirror/*") whose models may set
    # trust_remote_code without an admin.
    TRUSTED_FILESETS = []
    # NeMo: the largest free-form JSON document (spec, custom_fields, ownership) stored.
    NEMO_MAX_DOCUMENT_BYTES = 64 * 1024
    # Model-version sources naming a host (http, https, ftp, sftp, hdfs, mlflow-artifacts://host
    # ...) are refused as MLflow 3.17.2's server refuses them, unless their scheme is listed
    # here (as MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES) or their host is that of one of
    # the trusted artifact roots (as MLflow trusts its --default-artifact-root).
    ALLOWED_HOST_ADDRESSED_SCHEMES = []
    TRUSTED_ARTIFACT_ROOTS = []
    # Registry webhooks (MLflow's MLFLOW_WEBHOOK_* settings). The secret encryption key is a
    # Fernet key (`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key()
    # .decode())"`); without it, webhooks with a secret cannot be created.
    WEBHOOK_SECRET_ENCRYPTION_KEY = None
    WEBHOOK_ALLOWED_SCHEMES = ["https"]
    WEBHOOK_ALLOW_PRIVATE_IPS = False
    WEBHOOK_REQUEST_TIMEOUT = 30
    # Delivery from the outbox: a thread per worker, woken after each change that raised an
    # event, and polling every WEBHOOK_POLL_SECONDS; failures back off (1 s, 2 s, 4 s ... at
    # most WEBHOOK_MAX_BACKOFF_SECONDS) and are kept as failed after WEBHOOK_MAX_ATTEMPTS.
    WEBHOOK_DELIVERY = True
    WEBHOOK_POLL_SECONDS = 2
    WEBHOOK_MAX_ATTEMPTS = 8
    WEBHOOK_BACKOFF_SECONDS = 1
    WEBHOOK_MAX_BACKOFF_SECONDS = 300
    RETRY_TOKEN_TTL_SECONDS = 24 * 3600
    RETRY_TOKEN_WAIT_MS = 10000
    RETRY_TOKEN_PURGE_CHANCE = 0.01

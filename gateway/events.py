"""Domain events: services announce what they created, without knowing who listens."""
from blinker import Namespace

_signals = Namespace()

# Sent with sender=<kind> ("registered_model" or "model_version") and row_id=<primary key>.
created = _signals.signal("created")

# Sent with sender="retry_token" and workspace=<name> when a replay is answered.
retry_replayed = _signals.signal("retry-replayed")
# Sent with sender="traffic" and workspace=<name> when a request is refused with 429.
rate_limited = _signals.signal("rate-limited")

"""What the machinery announces for metrics to count, without knowing who listens."""
from blinker import Namespace

_signals = Namespace()

# Sent with sender="retry_token" and workspace=<name> when a replay is answered.
retry_replayed = _signals.signal("retry-replayed")
# Sent with sender="traffic" and workspace=<name> when a request is refused with 429.
rate_limited = _signals.signal("rate-limited")

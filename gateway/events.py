"""Domain events: services announce what they created, without knowing who listens."""
from blinker import Namespace

_signals = Namespace()

# Sent with sender=<kind> ("registered_model" or "model_version") and row_id=<primary key>.
created = _signals.signal("created")

"""The API faces: each maps its own wire format onto the shared services."""

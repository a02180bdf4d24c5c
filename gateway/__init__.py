"""A multi-tenant model registry gateway speaking MLflow's registry API."""

__all__ = ["create_app"]


def __getattr__(name):
    # Lazy, so `gateway serve` can configure the environment (prometheus-client's
    # multiprocess folder) before the app's modules are first imported.
    if name == "create_app":
        from gateway.app import create_app
        return create_app
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")

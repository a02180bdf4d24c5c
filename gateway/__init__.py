"""A multi-tenant model registry gateway speaking MLflow's registry API."""
from gateway.app import create_app

__all__ = ["create_app"]

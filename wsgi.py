"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""
from gateway import create_app
from gateway.delivery import start

app = create_app()
start(app)  # this worker's webhook delivery thread

"""The ceiling for any Flask service here: a constant JSON answer, nothing else."""
from flask import Flask

app = Flask(__name__)
BODY = {"model_version": {"name": "m", "version": "1", "status": "READY"}}


@app.get("/<path:anything>")
def constant(anything):
    return BODY

"""The floor for the tracking pass-through: the least a Flask reverse proxy can do.

Each request goes to BARE_PROXY_UPSTREAM through urllib3's connection pool and its answer comes
back whole; no authentication, no workspace, no rate limit, no streaming. Served the way the
gateway is (gunicorn's asyncio worker, asgiref's bridge: `gunicorn -k asgi bare_proxy:asgi`),
what it adds over calling the upstream directly is the cost of one more hop on this machine,
which no gateway feature can remove.
"""
import os

import urllib3
from asgiref.wsgi import WsgiToAsgi
from flask import Flask, Response, request

pool = urllib3.connection_from_url(os.environ["BARE_PROXY_UPSTREAM"], maxsize=32, block=False,
                                   retries=False)
app = Flask(__name__)
asgi = WsgiToAsgi(app)


@app.get("/health")
def health():
    return "ok"


@app.route("/<path:rest>", methods=["GET", "POST"])
def forward(rest):
    answer = pool.urlopen(request.method, request.full_path, body=request.get_data() or None,
                          headers={"X-MLFLOW-WORKSPACE": "default"}, redirect=False)
    return Response(answer.data, status=answer.status,
                    content_type=answer.headers.get("Content-Type"))

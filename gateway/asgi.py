"""The deployment `gateway serve` runs: gunicorn's asyncio worker in front of the WSGI app.

A synchronous gunicorn worker is held by whoever is connected to it: four clients that send a
request line and then trickle headers (or half a body) stop a four-worker server. Here
gunicorn's asyncio worker (`-k asgi`) reads every request, headers and whole body, while it
waits on many connections at once; only a complete request reaches the Flask app, which runs
in one thread of the worker (asgiref's), one request at a time per process as under a
synchronous worker, so nothing about the database changes. (A pool of threads per worker was
measured too: SQLite writers then contend inside each process, and creates fell to 0.37 of
synchronous workers.) A slow or idle client costs a coroutine.

asgiref's WsgiToAsgi does the bridging; this module adds the one thing it lacks: a body is
read only up to MAX_CONTENT_LENGTH, so an endless or oversized upload is refused (413 in the
face's format, from the app) instead of being spooled to disk.

Calls forwarded to the tracking upstream are the exception: they spend their time waiting on
the upstream, not on the database, so they run in a pool of GATEWAY_TRACKING_THREADS threads
per worker (beside the one thread of the registry's requests); otherwise two workers in front
of a 60 ms upstream would pass 33 requests a second.
"""
from concurrent.futures import ThreadPoolExecutor
from tempfile import SpooledTemporaryFile

from asgiref.sync import AsyncToSync, SyncToAsync
from asgiref.wsgi import WsgiToAsgiInstance
from werkzeug.exceptions import HTTPException

from gateway.app import create_app
from gateway.delivery import start
from gateway.faces.mlflow_api.tracking import body_limit, might_forward


def create_asgi_app(config=None):
    """The gateway as an ASGI app (for `gunicorn -k asgi 'gateway.asgi:create_asgi_app()'`)."""
    app = create_app(config)
    start(app)  # this worker's webhook delivery thread
    wrapped = BufferedWsgi(app, int(app.config["MAX_CONTENT_LENGTH"]))
    if app.config["TRACKING_UPSTREAM"]:
        wrapped.forwards = Forwards(app, int(app.config["TRACKING_THREADS"]))
    return wrapped


class Forwards:
    """Which requests go to the tracking upstream, and the threads that run them."""

    def __init__(self, app, threads):
        self.app = app
        self.run = SyncToAsync(WsgiToAsgiInstance.__dict__["run_wsgi_app"].func, thread_sensitive=False,
                               executor=ThreadPoolExecutor(threads, "forward"))

    def match(self, scope):
        if not might_forward(scope["path"]):  # the registry, NeMo, OpenMetadata, /health...
            return False
        adapter = self.app.url_map.bind("localhost", script_name=scope.get("root_path") or None)
        try:
            endpoint, _ = adapter.match(scope["path"], method=scope["method"])
        except HTTPException:  # unknown, a redirect, a wrong method: the app answers
            return False
        return getattr(self.app.view_functions.get(endpoint), "forwarding", False)


class BufferedWsgi:
    """An ASGI app that reads each request whole (at most max_body bytes), then runs WSGI.

    With a tracking upstream, forwarded requests have the pass-through's limit (artifact
    uploads their own: tracking.body_limit); bodies are spooled to a temporary file, never
    held in memory."""

    forwards = None  # with a tracking upstream

    def __init__(self, wsgi_app, max_body):
        self.wsgi_app, self.max_body = wsgi_app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        request = _Request(self.wsgi_app, self.max_body)
        if self.forwards is not None and scope["type"] == "http" and self.forwards.match(scope):
            request.run = self.forwards.run
            request.max_body = body_limit(self.forwards.app.config, scope["path"]) or float("inf")
        await request(scope, receive, send)


async def _lifespan(receive, send):
    # Nothing to start or stop: the app is built when the worker loads it.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Request(WsgiToAsgiInstance):
    """One request: its body read up to the limit, then the WSGI app in asgiref's thread."""

    def __init__(self, wsgi_app, max_body):
        super().__init__(wsgi_app)
        self.max_body, self.size = max_body, 0
        self.run = None  # another way to run the app (the forwards' threads)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # no websockets here
        self.scope = scope
        with SpooledTemporaryFile(max_size=65536) as body:
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_body:
                self.size = declared  # refused unread: the app answers 413
            elif not await self._read(receive, body):
                return  # the client went away before its request was complete
            body.seek(0)
            self.sync_send = AsyncToSync(send)
            if self.run is not None:
                await self.run(self, body)
            else:
                await self.run_wsgi_app(body)

    async def _read(self, receive, body):
        """Read the body into `body` until its end or past the limit; False on disconnect."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk = message.get("body", b"")
            self.size += len(chunk)
            if self.size > self.max_body:
                return True  # stop reading; CONTENT_LENGTH > limit makes the app answer 413
            body.write(chunk)
            if not message.get("more_body"):
                return True

    def build_environ(self, scope, body):
        environ = super().build_environ(scope, body)
        # The body as read, chunked ones included (the app sees a plain, complete body).
        environ["CONTENT_LENGTH"] = str(self.size)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return environ


def _declared_length(scope):
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None

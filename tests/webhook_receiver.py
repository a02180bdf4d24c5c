"""A real HTTP server receiving webhook deliveries, checking them as MLflow's docs say."""
import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests import processes

SECRET = "s3cr3t-shared-with-the-receiver"


def verify_mlflow_signature(payload, signature, secret, delivery_id, timestamp):
    """MLflow's documented recipe for receivers (docs: "Webhooks", verifying signatures)."""
    if not signature or not signature.startswith("v1,"):
        return False
    signed_content = f"{delivery_id}.{timestamp}.{payload}"
    expected = base64.b64encode(hmac.new(secret.encode("utf-8"), signed_content.encode("utf-8"),
                                         hashlib.sha256).digest()).decode("utf-8")
    return hmac.compare_digest(signature.removeprefix("v1,"), expected)


class Receiver:
    """A real HTTP server that records deliveries and checks their signatures."""

    def __init__(self, status=200):
        self.deliveries, self.status, self.lock = [], status, threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                record = {"id": self.headers["X-MLflow-Delivery-Id"],
                          "timestamp": self.headers["X-MLflow-Timestamp"],
                          "signed": verify_mlflow_signature(
                              body, self.headers.get("X-MLflow-Signature"), SECRET,
                              self.headers["X-MLflow-Delivery-Id"],
                              self.headers["X-MLflow-Timestamp"]),
                          "body": json.loads(body), "path": self.path}
                with receiver.lock:
                    receiver.deliveries.append(record)
                self.send_response(receiver.status)
                self.end_headers()
                self.wfile.write(b"received")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, path=None):
        with self.lock:
            return [d for d in self.deliveries if path is None or d["path"] == path]

    def wait_for(self, count, path=None, seconds=30):
        return processes.wait_for(lambda: len(self.events(path)) >= count and self.events(path),
                                  seconds, f"{count} deliveries at {path or 'the receiver'}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()

"""Clients that connect and hold on, as a slowloris attack does (tests and benchmarks)."""
import socket
import threading


class SlowClients:
    """`count` connections that hold on: a third trickle headers, a third send half a body
    and stall, a third say nothing at all."""

    def __init__(self, port, count):
        self.sockets, self.stopped = [], threading.Event()
        head = b"POST /api/2.0/mlflow/registered-models/create HTTP/1.1\r\nHost: x\r\n"
        for index in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if index % 3 == 0:
                sock.sendall(head)
            elif index % 3 == 1:
                sock.sendall(head + b"Content-Type: application/json\r\n"
                             b"Content-Length: 100\r\n\r\n{\"name\"")
            self.sockets.append(sock)
        self.trickler = threading.Thread(target=self._trickle, daemon=True)
        self.trickler.start()

    def _trickle(self):
        while not self.stopped.wait(0.5):
            for sock in self.sockets[::3]:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    def close(self):
        self.stopped.set()
        self.trickler.join(timeout=10)
        for sock in self.sockets:
            sock.close()

"""A small OTLP/HTTP trace receiver for tests: accepts protobuf
`POST /v1/traces` on 127.0.0.1, decodes each body as an
`ExportTraceServiceRequest` with the official `opentelemetry-proto` messages
and keeps the spans; it also counts every connection it was offered, so a
test can tell that nothing was sent at all.

    with running_receiver() as receiver:     # receiver.endpoint: "http://127.0.0.1:PORT"
        ...
        receiver.spans()                     # [Span dicts], oldest export first
"""

import http.server
import socketserver
import threading
from contextlib import contextmanager

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

HOST = "127.0.0.1"


def _value(any_value):
    """An OTLP AnyValue as the Python value it carries."""
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind is None:
        return None
    return getattr(any_value, kind)


class Receiver(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__((HOST, 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.bodies = []
        self._spans = []

    @property
    def endpoint(self):
        return f"http://{HOST}:{self.server_address[1]}"

    def get_request(self):
        conn = super().get_request()
        with self.lock:
            self.connections += 1
        return conn

    def add(self, body):
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append({
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "start": s.start_time_unix_nano,
                        "end": s.end_time_unix_nano,
                        "attributes": {a.key: _value(a.value) for a in s.attributes},
                        "status": s.status.code,
                        "resource": resource,
                    })
        with self.lock:
            self.bodies.append(body)
            self._spans.extend(spans)

    def spans(self):
        with self.lock:
            return list(self._spans)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
            self.send_response(404 if self.path != "/v1/traces" else 415)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        try:
            self.server.add(body)
        except Exception:  # a body that is not an ExportTraceServiceRequest
            self.send_response(400)
            self.send_header("content-length", "0")
            self.end_headers()
            raise
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@contextmanager
def running_receiver():
    """Serve a [`Receiver`] on 127.0.0.1 (a free port) in a thread; stop it on exit."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, name="otlp-receiver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

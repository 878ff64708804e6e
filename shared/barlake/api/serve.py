"""`barlake serve`: the api function under functions-framework's gunicorn, with request limits.

functions-framework starts gunicorn with `limit_request_line=0` (unlimited), so a 20 MB
request line is parsed in full — tens of seconds of CPU that every other request waits for.
This runs the same Flask app functions-framework builds for the `api` target, through its own
server factory, with gunicorn's default limits restored and stated here:

- request line at most LIMIT_REQUEST_LINE bytes (longer: 414, answered by gunicorn);
- at most LIMIT_REQUEST_FIELDS header fields, each at most LIMIT_REQUEST_FIELD_SIZE bytes
  (more or longer: 431 / 400).
gunicorn answers what it refuses itself (these limits, a malformed request line or chunked
body) with an HTML page; here its error writer is replaced by one that answers the API's JSON
error body, so every answer of `barlake serve` is JSON.

On Cloud Run the deployed function is served by functions-framework itself behind Google's
front end, which bounds request lines and headers before they reach the container
(docs/deploy.md).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

LIMIT_REQUEST_LINE = 8190  # gunicorn's own default (bytes)
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190


_CODES = {400: "bad_request", 403: "forbidden", 414: "request_line_too_long"}
_CODES |= {417: "expectation_failed", 431: "headers_too_large", 500: "internal"}
_CODES |= {501: "not_implemented"}


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error, answering {"error": {status, code, message}} in JSON."""
    from gunicorn import util

    error = {"status": status_int, "code": _CODES.get(status_int, "bad_request")}
    body = json.dumps({"error": {**error, "message": mesg[:300]}}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="barlake serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)

    import functions_framework
    from functions_framework._http import create_server  # what its own CLI calls
    from gunicorn import util

    util.write_error = write_json_error  # gunicorn's workers call it through the module

    from barlake.api import function

    app = functions_framework.create_app(
        target="api", source=function.__file__, signature_type="http"
    )
    create_server(
        app,
        False,
        limit_request_line=LIMIT_REQUEST_LINE,
        limit_request_fields=LIMIT_REQUEST_FIELDS,
        limit_request_field_size=LIMIT_REQUEST_FIELD_SIZE,
    ).run(args.host, args.port)


if __name__ == "__main__":
    main()

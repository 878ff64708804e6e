"""The `api` Cloud Function (functions-framework, HTTP signature): the read API of barlake.api.

The app is built on the first request, not at import (as the other functions do): imports
stay light and a bad setting shows up as a logged error with its message. One app per
instance, shared by the instance's threads; its clients and L1 are reused across requests.
"""

from __future__ import annotations

import io
import logging
import threading
from typing import TYPE_CHECKING

import functions_framework

from barlake.api.app import ApiApp, ApiError, build_api, error_reply

if TYPE_CHECKING:
    import flask

log = logging.getLogger("barlake.api")
_api: ApiApp | None = None
_lock = threading.Lock()


def get_api() -> ApiApp:
    global _api
    if _api is None:
        with _lock:
            if _api is None:
                from barlake import cloudfn

                cloudfn.configure_logging()  # JSON lines under Cloud Run, as every function
                pyarrow_without_pandas()
                _api = build_api()
                import gc

                # Everything loaded so far (pyarrow, numpy, the app) lives as long as the
                # instance: keep it out of the collector's full scans, which otherwise walk
                # hundreds of thousands of objects every few hundred requests.
                gc.freeze()
    return _api


def pyarrow_without_pandas() -> None:
    """Keep pandas out of the first requests.

    pyarrow imports pandas (~0.75 s here) the first time it builds any array, only to ask
    whether its input is a pandas object; the API never hands it one. That question is asked
    once per process and remembered: ask it now with pandas hidden, and pyarrow remembers
    "no pandas". pandas still imports normally when something needs it: pyarrow's numpy
    conversions (adjust=total/none) and the exchange calendars (weekly bars aggregated on the
    fly) load it on their first use, and pyarrow's to_pandas/from_pandas check again and work.
    """
    import importlib.abc
    import sys

    if "pandas" in sys.modules:
        return

    class _HidePandas(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object, target: object = None) -> None:
            if name == "pandas" or name.startswith("pandas."):
                raise ModuleNotFoundError(f"{name} hidden while pyarrow starts", name=name)

    import numpy as np
    import pyarrow as pa

    finder = _HidePandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array(np.zeros(1))
    finally:
        sys.meta_path.remove(finder)


def _framework_error(exc: Exception) -> tuple[bytes, int, list[tuple[str, str]]]:
    """Flask answers some requests before the function runs (a path its URL rules refuse, such
    as one holding a newline; /robots.txt): in JSON too, like every other answer."""
    status = int(getattr(exc, "code", None) or 404)
    code = "no_route" if status == 404 else "method_not_allowed"
    reply = error_reply(ApiError(status, code, f"{getattr(exc, 'name', 'Not Found')}"))
    return reply.body, reply.status, reply.headers


# While functions-framework loads this module, errorhandler is its Flask app's (elsewhere, a
# no-op): a plain call, not a decorator, so the function keeps its name either way.
functions_framework.errorhandler(404)(_framework_error)
functions_framework.errorhandler(405)(_framework_error)


def _framework_crash(exc: Exception) -> tuple[bytes, int, list[tuple[str, str]]]:
    """Whatever still escapes into Flask answers in JSON too, never Flask's HTML page."""
    reply = error_reply(ApiError(500, "internal", "internal error; see the server logs"))
    return reply.body, reply.status, reply.headers


functions_framework.errorhandler(500)(_framework_crash)


def unreadable_body(request: flask.Request) -> tuple[bytes, int, list[tuple[str, str]]] | None:
    """A 400 JSON answer when the request's body cannot be read (a malformed chunked
    encoding, a body cut short). functions-framework reads every body after the function
    returns; read it first, so the error is ours to answer, and leave werkzeug's cache holding
    an empty body so that the framework's read does not fail again (a 500 and a traceback)."""
    try:
        data = request.get_data()
    except Exception as exc:
        request._cached_data = b""  # werkzeug.Request's body cache (get_data(cache=True))
        reply = error_reply(
            ApiError(400, "bad_body", f"the request body cannot be read: {type(exc).__name__}")
        )
        return reply.body, 400, [*reply.headers, ("Connection", "close")]
    request.environ["wsgi.input"] = io.BytesIO(data)  # the app reads bodies from its environ
    return None


@functions_framework.http
def api(request: flask.Request) -> tuple[bytes, int, list[tuple[str, str]]]:
    try:
        app = get_api()
    except Exception as exc:
        log.exception("the api cannot start")
        reply = error_reply(ApiError(500, "misconfigured", f"the api cannot start: {exc}"))
        return reply.body, reply.status, reply.headers
    bad = unreadable_body(request)
    if bad is not None:
        return bad
    reply = app.handle(request.environ)
    return reply.body, reply.status, reply.headers

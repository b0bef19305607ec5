"""A tiny WSGI app that gunicorn serves in the deployment tests instead of carebox, to
see exactly what reaches the app through nginx: the headers (`/headers`), a body
(`/upload`), and a slow streamed answer (`/stream?seconds=S`) like a large export."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/headers":
        seen = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        seen["REMOTE_ADDR"] = environ.get("REMOTE_ADDR")
        seen["wsgi.url_scheme"] = environ.get("wsgi.url_scheme")
        body = json.dumps(seen).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/upload":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        got = len(environ["wsgi.input"].read(size))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(got).encode()]
    if path == "/stream":
        seconds = float(parse_qs(environ.get("QUERY_STRING", "")).get("seconds", ["1"])[0])
        start_response("200 OK", [("Content-Type", "text/csv")])

        def rows():
            end = time.monotonic() + seconds
            n = 0
            while time.monotonic() < end:
                n += 1
                yield f"{n},row\n".encode()
                time.sleep(0.05)
            yield b"END\n"

        return rows()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

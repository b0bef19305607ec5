"""The floor under every row of bench-1m: a trivial Flask route (no database, no
extension, no template), served by bench_http.py with carebox's own gunicorn settings
beside carebox, so a poll's or the tracking page's time can be read against what any
Flask request here costs."""

from flask import Flask, request

app = Flask(__name__)


@app.get("/floor")
def floor():
    if request.if_none_match.contains("floor"):
        return "", 304, {"ETag": '"floor"'}
    return "ok", 200, {"ETag": '"floor"'}

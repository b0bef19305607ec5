# gunicorn settings for carebox in production (docs/deploy.md), also what the tests and
# bench/ serve carebox with. Start: gunicorn -c deploy/gunicorn.conf.py 'backoffice:create_app()'
# Every value can be changed from the environment (GUNICORN_*), e.g. in the systemd unit.
#
# gunicorn always runs behind nginx (deploy/nginx/carebox.conf). nginx reads each request
# whole before passing it on and buffers each response, so a slow client (a phone on a bad
# line, or an attacker dribbling headers) costs nginx a socket, never a gunicorn thread:
# gunicorn alone is stalled by 50 such connections (tests/test_deploy_nginx.py shows both).
import gc
import multiprocessing
import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")  # only nginx talks to it

# Worker class: gthread (a pool of threads per process).
# - sync workers are killed by the arbiter once a request runs past `timeout`: a
#   1M-row CSV export was cut at 30 s and the browser got HTTP 200 with two thirds of the
#   rows. In gthread the worker's main loop keeps telling the arbiter it is alive while
#   its threads serve, so `timeout` catches a hung process, not a long request.
# - a thread waiting on MariaDB releases the GIL, so threads serve the other users meanwhile
#   (carebox spends most of a request in the database); processes give the CPU parallelism.
# - gevent/eventlet would need PyMySQL and every library monkey-patched; not worth it here.
worker_class = "gthread"
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() + 1)
# Each thread holds at most one database connection: keep workers * threads under the
# database's max_connections (SQLAlchemy's pool: 5 + 10 overflow per process).
threads = _int("GUNICORN_THREADS", 4)

# Timeouts.
# timeout: a worker whose main loop has not checked in for this long is killed and replaced
#   (a deadlock, a C extension stuck); with gthread long requests do not count.
timeout = _int("GUNICORN_TIMEOUT", 60)
# graceful_timeout: on restart/deploy (SIGTERM/SIGHUP) requests in flight get this long to
#   finish; a download still running after it is cut (large exports belong in a job).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)
# keepalive: nginx opens a fresh loopback connection per request; short is plenty.
keepalive = 5

# Recycle workers now and then so a slow leak never becomes an outage (jitter: not all at once).
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = 500

# Load the app once in the master: a configuration error (a missing SECRET_KEY) stops
# gunicorn at start with its message instead of crash-looping workers, and workers share
# memory. Nothing connects to the database while the app is built (create_app), and
# post_fork below drops any pooled connection a worker would otherwise share.
preload_app = True

# The X-Forwarded-* headers of nginx on this host are trusted (the app's ProxyFix, set by
# CAREBOX_PROXY_FIX=1, reads the same ones); nobody else reaches this port.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# The workers' heartbeat files on tmpfs: on a busy disk a heartbeat write can block long
# enough for the arbiter to kill a healthy worker.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Logs go to stdout/stderr: journald keeps them (journalctl -u carebox-web).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The client's address as nginx saw it, and the time taken (microseconds).
access_log_format = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(B)s %(D)sus "%(a)s"'
proc_name = "carebox"

# gunicorn 23+ opens a control socket under ~/.gunicorn; carebox does not use it, and two
# instances on one host (several sites, the tests) would fight over the path.
control_socket_disable = True


# Garbage collection. The preloaded app's objects (some 200,000: modules, mappers, compiled
# templates) live as long as the process, yet every full collection walked them all (200 ms
# on the bench machine, every few dozen desk pages), and a young collection came every 700
# new objects (twice per desk page, 0.3-0.6 ms each). Frozen in the arbiter before each
# fork, the collector leaves them alone (and the workers keep sharing their memory pages);
# a worker collects its young objects every GUNICORN_GC_THRESHOLD allocations instead.
# Memory too (issue 16 item 9): CPython puts off a full collection until the objects waiting
# for one are a quarter of those it last kept, and the app's counted, so requests' reference
# cycles (request and environ, ORM rows, form fields) piled up for several MB per worker.
gc_threshold = _int("GUNICORN_GC_THRESHOLD", 10_000)


def pre_fork(server, worker):
    gc.freeze()


def post_fork(server, worker):
    """A forked worker collects its young objects every `gc_threshold` allocations, and
    must not reuse a database connection of the master (SQLAlchemy's advice for fork):
    drop the pools, leaving the master's sockets to the master. Then one full collection
    (nothing frozen is walked), so that the worker counts from its own objects and not from
    the master's last full collection, which put its first one off by some 45,000 objects."""
    gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])
    app = server.app.wsgi()
    sqlalchemy = getattr(app, "extensions", {}).get("sqlalchemy")
    if sqlalchemy is not None:
        with app.app_context():
            for engine in sqlalchemy.engines.values():
                engine.dispose(close=False)
    gc.collect()


def when_ready(server):
    """Say it loudly when several workers count rate limits each in their own memory."""
    from backoffice.config import per_process_limits_warning

    app = server.app.wsgi()
    warning = per_process_limits_warning(getattr(app, "config", {}), server.cfg.workers)
    if warning:
        for _ in range(3):  # three lines, so it stands out in journalctl
            server.log.warning(warning)

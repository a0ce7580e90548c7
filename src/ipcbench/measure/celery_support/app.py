"""The Celery app of the ``celery`` mechanism and its one task, ``ipcbench.echo``: the light module every
worker imports (a round's local worker, ``ipcbench celery-worker`` on another host, or the plain
``celery -A ipcbench.measure.celery_support.app worker``, which reads the broker from
``IPCBENCH_CELERY_BROKER_URL``).

Payloads travel as pickles (``task_serializer`` and ``result_serializer`` ``pickle``), as they do through
``multiprocessing.Pool``: Celery's default, JSON, cannot carry ``bytes`` or numpy arrays, and would
measure a different serializer. A worker that accepts pickle runs whatever a client of its broker sends,
so the broker must be trusted: ipcbench's own Redis listens on 127.0.0.1 only and requires a random
password (see ``services``). Celery refuses to run such a worker as root unless ``C_FORCE_ROOT`` is set;
ipcbench sets it only for the workers it starts itself on its own password-protected Redis.
"""

from __future__ import annotations

import os

ECHO = "ipcbench.echo"
# Results expire by themselves after this many seconds (Celery's default is a day); the round also deletes
# the ones it has read (``driver``), so a long run does not fill the Redis.
RESULT_EXPIRES_S = 600


def echo(payload):
    """The task: return the payload, so that it crosses the broker both ways (as ``patterns.echo_task``)."""
    return payload


def settings(queue: str) -> dict:
    """The Celery configuration of client and workers (besides the broker and backend URLs)."""
    return {
        "task_serializer": "pickle",
        "result_serializer": "pickle",
        "accept_content": ["pickle"],
        "result_accept_content": ["pickle"],
        "task_default_queue": queue,
        "result_expires": RESULT_EXPIRES_S,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }


def make_app(broker_url: str, queue: str, *, main: str = "ipcbench", remote_control: bool = True):
    """A Celery app on ``broker_url`` (Redis, also the result backend) whose tasks go to ``queue``, with
    ``ipcbench.echo`` registered. ``remote_control=False``: a worker of this app has no control queue
    (a round's own worker: nobody inspects it, and it leaves nothing behind on a shared broker)."""
    from celery import Celery

    app = Celery(main, broker=broker_url, backend=broker_url, set_as_current=False)
    app.conf.update(settings(queue), worker_enable_remote_control=remote_control)
    app.task(name=ECHO, ignore_result=False)(echo)
    return app


def __getattr__(name: str):
    # ``celery -A ipcbench.measure.celery_support.app worker`` looks up ``app``: made on first use, from
    # the environment, so importing this module makes nothing.
    if name in ("app", "celery"):
        from . import BROKER_ENV, REMOTE_QUEUE

        url = os.environ.get(BROKER_ENV)
        if not url:
            raise AttributeError(f"set {BROKER_ENV} to the broker's URL (redis://HOST:PORT/DB) to use {__name__}.app")
        made = make_app(url, REMOTE_QUEUE)
        globals()["app"] = globals()["celery"] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

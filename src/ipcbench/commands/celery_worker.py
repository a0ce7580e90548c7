"""``ipcbench celery-worker``: a Celery worker for the ``celery`` mechanism, on any host that reaches the broker
(``ipcbench run -m celery --broker-url URL --remote-workers`` sends its tasks to it)."""

from __future__ import annotations

import argparse

ORDER = 45

EXAMPLES = """examples:
  ipcbench celery-worker --broker-url redis://:PASSWORD@broker.lan:6379/0 --concurrency 8
  # then, on the machine that measures:
  ipcbench run -m celery --broker-url redis://:PASSWORD@broker.lan:6379/0 --remote-workers --workers 8

The same worker without ipcbench's command line (it needs ipcbench importable):
  IPCBENCH_CELERY_BROKER_URL=redis://... celery -A ipcbench.measure.celery_support.app worker --pool prefork -c 8

Tasks and results are pickled (as multiprocessing.Pool pickles them): a worker runs whatever a client of its
broker sends, so use a broker only you and your measuring machines can reach (a password, a private network).
Celery refuses to run such a worker as root unless C_FORCE_ROOT is set.
"""


def register(sub) -> None:
    p = sub.add_parser("celery-worker", help="a Celery worker for `run -m celery --remote-workers`",
                       description="Run a Celery prefork worker that serves the tasks of "
                       "`ipcbench run -m celery --broker-url URL --remote-workers` (queue 'ipcbench'), until "
                       "Ctrl-C or SIGTERM. Needs pip install 'ipcbench[celery]'.", epilog=EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker-url", required=True, metavar="URL",
                   help="the Redis that `ipcbench run --broker-url` uses: redis://[:PASSWORD@]HOST:PORT/DB")
    p.add_argument("--concurrency", "-c", type=int, help="prefork processes (default: the CPUs this process may "
                   "use)")
    p.add_argument("--hostname", "-n", help="the worker's name (default: ipcbench-PID@HOST)")
    p.add_argument("--loglevel", "-l", default="INFO", help="Celery's log level (default INFO)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..measure.celery_support import REMOTE_QUEUE, missing
    from ..plan.presets import usable_cpus

    why = missing(args.broker_url)
    if why:
        raise UserError(why)
    if not args.broker_url.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
        raise UserError(f"--broker-url takes a Redis URL, redis://[:PASSWORD@]HOST:PORT/DB; got {args.broker_url!r}")
    concurrency = usable_cpus() if args.concurrency is None else args.concurrency
    if concurrency < 1:
        raise UserError(f"--concurrency must be 1 or more, got {concurrency}")
    from celery.exceptions import SecurityError

    from ..measure.celery_support import worker

    try:
        return worker.run(args.broker_url, REMOTE_QUEUE, concurrency, args.hostname,
                          args.loglevel.upper())
    except SecurityError:
        raise UserError("Celery refuses to run a worker as root that accepts pickled tasks (ipcbench's "
                        "payloads are pickled): run it as another user, or set C_FORCE_ROOT=1 if you trust "
                        "every client of this broker") from None

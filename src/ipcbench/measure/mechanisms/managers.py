"""Manager proxies: ``manager_dict``, ``manager_list``, ``manager_queue``. Every call is a round trip to
the manager's server process over a socket; the server is started and warmed before the clock."""

from ..channels import bounded_size, queue_pair, shared_queue
from . import Mechanism


def _queue_channel(rnd, bounded: bool):
    mgr = rnd.manager()
    if bounded:                 # bounded: the server keeps a copy of every item (channels.bounded_size)
        size = rnd.channel_params["maxsize"] = bounded_size(rnd.case.payload_bytes)
        return shared_queue(mgr.Queue(size))
    return queue_pair(mgr.Queue)


def _dict(mgr, payload, n):
    return mgr.dict({k: payload for k in range(n)})


def _list(mgr, payload, n):
    return mgr.list([payload] * n)


MECHANISMS = [
    Mechanism("manager_dict", "manager", "SyncManager.dict() proxy: clients read d[key]",
              patterns=("rpc",), make_proxy=_dict),
    Mechanism("manager_list", "manager", "SyncManager.list() proxy: clients read l[index]",
              patterns=("rpc",), make_proxy=_list),
    Mechanism("manager_queue", "manager", "SyncManager.Queue() proxy: put/get through the server",
              patterns=("roundtrip", "fanin"), make_channel=_queue_channel),
]

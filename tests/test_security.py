"""What ipcbench starts listens only where it must (issue 14, item 6): a round's Manager server is reached
through a Unix socket in a private folder (or loopback), with multiprocessing's random authentication key;
no process of a round listens on a network address."""

import os
import stat

import psutil

from ipcbench.measure.harness import Round
from ipcbench.plan.cases import Case, RoundSpec

SPEC = RoundSpec(budget_s=0.005, timeout_s=10)


def _listening_inet(pid: int) -> list:
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except AttributeError:                                  # psutil < 6
        conns = psutil.Process(pid).connections(kind="inet")
    return [c for c in conns if c.status == psutil.CONN_LISTEN]


def test_a_rounds_manager_listens_on_a_private_unix_socket_with_a_random_key(no_leftovers):
    for method in ("fork",):      # (spawn or forkserver in this process would leave their helpers running)
        rnd = Round(Case("manager_dict", "rpc", "bytes", 8, 1, method), SPEC)
        try:
            mgr = rnd.manager()
            address = mgr.address
            if isinstance(address, str):                    # AF_UNIX (Linux, macOS)
                folder = os.path.dirname(address)
                assert stat.S_IMODE(os.stat(folder).st_mode) & 0o077 == 0, oct(os.stat(folder).st_mode)
                assert stat.S_ISSOCK(os.stat(address).st_mode)
            else:                                           # AF_INET elsewhere: loopback only
                assert address[0] == "127.0.0.1", address
            key = mgr._authkey
            assert isinstance(key, bytes) and len(key) >= 32 and len(set(key)) > 8     # os.urandom(32)
            d = mgr.dict()
            d["x"] = 1
            assert d["x"] == 1
            for p in [psutil.Process(), *psutil.Process().children(recursive=True)]:
                bad = [c for c in _listening_inet(p.pid) if c.laddr.ip not in ("127.0.0.1", "::1")]
                assert not bad, (p.pid, bad)
        finally:
            rnd.close()

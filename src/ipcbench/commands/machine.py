"""``ipcbench machine``: show or edit this machine's id and description (the per-user machine file)."""

from __future__ import annotations

import argparse
import sys

ORDER = 35

EXAMPLES = """examples:
  ipcbench machine                                   # id, description, where the file is
  ipcbench machine --id lab-desktop --description "Ryzen 7950X, 64 GiB, Debian 12"
  ipcbench machine --new                             # a clone of another machine: give it its own id
"""


def register(sub) -> None:
    p = sub.add_parser("machine", help="show or edit this machine's id and description",
                       description="Result sets from many machines merge by machine id. ipcbench makes one on "
                       "the first run (hostname + random suffix) and keeps it in a per-user machine file, so "
                       "cloned VMs and renamed hosts stay distinct. `ipcbench run --machine-id` overrides it "
                       "for one run.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="new_id", metavar="ID", help="set this machine's id (letters, digits, . _ -)")
    p.add_argument("--description", help="set a free-text description (CPU, memory, OS ...)")
    p.add_argument("--new", action="store_true", help="give this machine a fresh id (for a cloned machine)")
    p.set_defaults(func=main)


def main(args) -> int:
    from ..errors import UserError
    from ..measure import machine_file as mf

    if args.new and args.new_id:
        raise UserError("give --id or --new, not both")
    data = mf.load()
    changed = args.new or args.new_id is not None or args.description is not None
    if changed:
        if not data["saved"]:
            raise UserError(f"cannot write the machine file {data['path']}; set IPCBENCH_MACHINE_FILE to a "
                            f"writable path")
        old = data["machine_id"]
        record = {k: v for k, v in data.items() if k not in ("path", "saved")}
        if args.new or args.new_id is not None:
            record["machine_id"] = mf.new_id() if args.new else mf.check_id(args.new_id)
            record["hostname"] = mf.hostname()
        if args.description is not None:
            record["description"] = args.description
        mf.save(record)
        data = {**data, **record}
        if record["machine_id"] != old:
            print(f"machine id changed from {old} to {record['machine_id']}; results already written stay "
                  f"under results/{old}/", file=sys.stderr)
    print(f"machine id:  {data['machine_id']}")
    print(f"description: {data.get('description') or '(none: ipcbench machine --description TEXT)'}")
    print(f"file:        {data['path']}" + ("" if data["saved"] else " (could not be written; id derived)"))
    if data.get("hostname") and data["hostname"] != mf.hostname():
        print(f"note: the file was made on host {data['hostname']!r}, this is {mf.hostname()!r}. A renamed "
              f"host keeps its id; a clone should get its own: ipcbench machine --new")
    return 0

"""nftables tables that tests add to a namespace for the length of a with-block.

Fault injection (stripping an MPTCP option from one segment, corrupting one payload byte,
dropping MP_CAPABLE SYNs) is a table of rules in the namespace that should misbehave; it is
removed on the way out of the block, also when the block raises.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from harness.run import run


@contextmanager
def table(ns: str, name: str, body: str) -> Iterator[str]:
    """`table inet <name> { <body> }` in namespace ns while the block runs; yields the name."""
    run(["nft", "-f", "-"], ns=ns, input=f"table inet {name} {{\n{body}\n}}\n")
    try:
        yield name
    finally:
        run(["nft", "delete", "table", "inet", name], ns=ns, check=False)


def counted_packets(ns: str, name: str) -> int:
    """Packets counted so far by every `counter` statement of table inet <name> in ns."""
    out = run(["nft", "-j", "list", "table", "inet", name], ns=ns).stdout
    return sum(expr["counter"]["packets"]
               for item in json.loads(out)["nftables"]
               for expr in item.get("rule", {}).get("expr", []) if "counter" in expr)

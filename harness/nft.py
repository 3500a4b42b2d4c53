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


def counters(ns: str, name: str, key: str = "chain") -> dict[str, int]:
    """Packets counted so far by the `counter` statements of table inet <name> in ns,
    summed per rule `key`: its "chain", or its "comment"."""
    out = run(["nft", "-j", "list", "table", "inet", name], ns=ns).stdout
    found: dict[str, int] = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule") or {}
        for expr in rule.get("expr", []):
            if "counter" in expr:
                found[rule.get(key, "")] = found.get(rule.get(key, ""), 0) \
                    + expr["counter"]["packets"]
    return found


def counted_packets(ns: str, name: str) -> int:
    """Packets counted so far by every `counter` statement of table inet <name> in ns."""
    return sum(counters(ns, name).values())

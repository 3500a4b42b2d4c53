"""MPTCP connections as the kernel holds them, read with drgn: what `ss -M` does not show.

drgn reads the running kernel's memory (/proc/kcore, as root) with the types of its
vmlinux, so it needs a kernel built with debug info (our debug variant). From a socket of
this process (`msk_of_socket`) or every connection of the kernel (`all_msks`: the token
hash, where every msk with a token is), `view()` gives the msk's data-level sequence
numbers and counters, its path manager's state, its scheduler, and each subflow's addresses,
TCP state and sequence numbers, so a test can assert on a field and a person can look.

`python -m harness.mptcp.kernel_view VMLINUX` prints every connection (what `invoke
inspect` runs in the VM); with a dump of a panicked guest's memory as a second argument
(`invoke inspect --core`), the end of that kernel's log and where it panicked come first.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

TCP_STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
              "BOUND_INACTIVE")
PM_TYPES = ("kernel", "userspace")
NEEDED_CONFIG = ("CONFIG_DEBUG_INFO", "CONFIG_PROC_KCORE")  # types, and the live memory


class KernelViewError(HarnessError):
    pass


@dataclass(frozen=True)
class SubflowView:
    local: tuple[str, int]
    remote: tuple[str, int]
    state: str
    local_id: int
    remote_id: int
    backup: bool
    fully_established: bool
    snd_una: int  # TCP-level sequence numbers of the subflow
    snd_nxt: int
    write_seq: int
    rcv_nxt: int


@dataclass(frozen=True)
class MskView:
    token: int
    state: str
    fully_established: bool
    csum_enabled: bool
    write_seq: int  # data-level (MPTCP) sequence numbers and counters
    snd_nxt: int
    snd_una: int
    ack_seq: int
    bytes_sent: int
    bytes_acked: int
    bytes_received: int
    bytes_retrans: int
    pm_type: str
    pm_subflows: int
    add_addr_signaled: int
    add_addr_accepted: int
    local_addr_used: int
    ids_in_use: tuple[int, ...]  # endpoint ids the in-kernel PM marked used
    scheduler: str
    subflows: tuple[SubflowView, ...]


def config_lacks(vmlinux: str) -> list[str]:
    """The options of NEEDED_CONFIG the build of vmlinux was made without (its .config)."""
    from harness.kernel.kconfig import options_lacking

    return options_lacking(Path(vmlinux).parent, NEEDED_CONFIG)


def lacks_why(missing: list[str]) -> str:
    return (f"the kernel was built without {' and '.join(missing)}, which drgn needs to read "
            f"the live kernel: build the debug variant (invoke build --variant debug)")


def program(vmlinux: str, core: str | None = None):
    """The running kernel as a drgn Program, with the types of `vmlinux`; with `core`, the
    kernel of that memory dump instead (see harness.vm.vmcore)."""
    try:
        import drgn
    except ImportError:
        raise KernelViewError("drgn is not installed (it is in the project's dependencies: "
                              "pip install -e .)") from None
    prog = drgn.Program()
    try:
        if core:
            prog.set_core_dump(core)
        else:
            prog.set_kernel()
        prog.load_debug_info([vmlinux], main=True)
    except (drgn.MissingDebugInfoError, OSError, ValueError) as err:
        what = core or "the running kernel"
        raise KernelViewError(f"drgn cannot read {what} with {vmlinux}: {err}. "
                              f"It needs a kernel built with debug info: "
                              f"invoke build --variant debug") from None
    return prog


def msk_of_socket(prog, sock: socket.socket):
    """The `struct mptcp_sock *` behind an MPTCP socket of this process."""
    from drgn import cast
    from drgn.helpers.linux.fs import fget
    from drgn.helpers.linux.pid import find_task

    file = fget(find_task(prog, os.getpid()), sock.fileno())
    sk = cast("struct socket *", file.private_data).sk
    return cast("struct mptcp_sock *", sk)


def all_msks(prog) -> list:
    """Every msk of the kernel that has a token (all but listeners), from the token hash."""
    from drgn.helpers.linux.list_nulls import hlist_nulls_for_each_entry

    buckets, mask = prog["token_hash"], prog["token_mask"].value_()
    return [msk for i in range(mask + 1)
            for msk in hlist_nulls_for_each_entry("struct mptcp_sock",
                                                   buckets[i].msk_chain.address_of_(),
                                                   "sk.icsk_inet.sk.__sk_common.skc_nulls_node")]


def view(msk) -> MskView:
    """What the kernel holds for one msk (`struct mptcp_sock *`), read now."""
    from drgn.helpers.linux.list import list_for_each_entry

    pm = msk.pm
    subflows = [_subflow(ctx) for ctx in list_for_each_entry(
        "struct mptcp_subflow_context", msk.conn_list.address_of_(), "node")]
    return MskView(
        token=msk.token.value_(), state=_state(msk.sk.icsk_inet.sk),
        fully_established=bool(msk.fully_established), csum_enabled=bool(msk.csum_enabled),
        write_seq=msk.write_seq.value_(), snd_nxt=msk.snd_nxt.value_(),
        snd_una=msk.snd_una.value_(), ack_seq=msk.ack_seq.value_(),
        bytes_sent=msk.bytes_sent.value_(), bytes_acked=msk.bytes_acked.value_(),
        bytes_received=msk.bytes_received.value_(), bytes_retrans=msk.bytes_retrans.value_(),
        pm_type=_name(PM_TYPES, pm.pm_type.value_()), pm_subflows=pm.subflows.value_(),
        add_addr_signaled=pm.add_addr_signaled.value_(),
        add_addr_accepted=pm.add_addr_accepted.value_(),
        local_addr_used=pm.local_addr_used.value_(), ids_in_use=_ids_in_use(pm),
        scheduler=msk.sched.name.string_().decode() if msk.sched else "",
        subflows=tuple(subflows))


def _subflow(ctx) -> SubflowView:
    from drgn import cast

    ssk = ctx.tcp_sock
    tp = cast("struct tcp_sock *", ssk)
    common = ssk.__sk_common
    return SubflowView(
        local=(_address(common, local=True), common.skc_num.value_()),
        remote=(_address(common, local=False), socket.ntohs(common.skc_dport.value_())),
        state=_state(ssk[0]), local_id=ctx.local_id.value_(), remote_id=ctx.remote_id.value_(),
        backup=bool(ctx.backup), fully_established=bool(ctx.fully_established),
        snd_una=tp.snd_una.value_(), snd_nxt=tp.snd_nxt.value_(),
        write_seq=tp.write_seq.value_(), rcv_nxt=tp.rcv_nxt.value_())


def _address(common, local: bool) -> str:
    if common.skc_family.value_() == socket.AF_INET6:
        field = common.skc_v6_rcv_saddr if local else common.skc_v6_daddr
        return str(ipaddress.IPv6Address(bytes(field.in6_u.u6_addr8)))
    field = common.skc_rcv_saddr if local else common.skc_daddr
    return str(ipaddress.IPv4Address(socket.ntohl(field.value_())))


def _ids_in_use(pm) -> tuple[int, ...]:
    """Endpoint ids whose bit is clear in the PM's id_avail_bitmap (a clear bit: in use)."""
    from drgn.helpers.linux.bitops import for_each_clear_bit

    bits = pm.id_avail_bitmap
    return tuple(for_each_clear_bit(bits, len(bits) * 8 * bits[0].type_.size))


def _state(sk) -> str:
    return _name(TCP_STATES, sk.__sk_common.skc_state.value_())


def _name(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else str(value)


def describe(found: MskView) -> str:
    """One msk and its subflows, as text for a person."""
    lines = [f"msk token {found.token:#010x} {found.state}"
             f"{' fully established' if found.fully_established else ''}"
             f"{' csum' if found.csum_enabled else ''}, scheduler {found.scheduler or '-'}",
             f"  data level: write_seq {found.write_seq} snd_nxt {found.snd_nxt} "
             f"snd_una {found.snd_una} ack_seq {found.ack_seq}",
             f"  bytes: sent {found.bytes_sent} acked {found.bytes_acked} "
             f"received {found.bytes_received} retrans {found.bytes_retrans}",
             f"  pm {found.pm_type}: subflows {found.pm_subflows}, add_addr signaled "
             f"{found.add_addr_signaled} accepted {found.add_addr_accepted}, local addresses "
             f"used {found.local_addr_used}, ids in use {list(found.ids_in_use)}"]
    for sub in found.subflows:
        lines.append(f"  subflow {sub.local[0]}:{sub.local[1]} -> {sub.remote[0]}:{sub.remote[1]}"
                     f" {sub.state} ids {sub.local_id}/{sub.remote_id}"
                     f"{' backup' if sub.backup else ''}"
                     f"{' fully established' if sub.fully_established else ''}: "
                     f"snd_una {sub.snd_una} snd_nxt {sub.snd_nxt} write_seq {sub.write_seq} "
                     f"rcv_nxt {sub.rcv_nxt}")
    return "\n".join(lines)


LOG_TAIL = 60  # a panic with its trace fits


def post_mortem(prog) -> str:
    """What a dump of a panicked kernel says first: the end of its log, where it panicked."""
    from drgn.helpers.linux.printk import get_dmesg

    log = get_dmesg(prog).decode(errors="replace").splitlines()[-LOG_TAIL:]
    try:
        thread = prog.crashed_thread()
        where = f"the thread that panicked (pid {thread.tid}):\n{thread.stack_trace()}"
    except (LookupError, ValueError) as err:
        where = f"no panicking thread found ({err})"
    return "\n".join([f"the kernel log's last {len(log)} lines:", *log, "", where])


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python -m harness.mptcp.kernel_view VMLINUX [CORE]", file=sys.stderr)
        return 2
    core = argv[1] if len(argv) == 2 else None
    try:
        prog = program(argv[0], core)
        msks = all_msks(prog)
    except KernelViewError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if core:
        print(post_mortem(prog) + "\n")
    print(f"{len(msks)} MPTCP connection(s)")
    for msk in msks:
        print(describe(view(msk)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

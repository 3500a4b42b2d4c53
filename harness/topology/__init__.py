"""Topologies as data (TOML) and the builder that brings them up as network namespaces."""

from harness.topology.builder import (
    ImpairmentUnsupported,
    TeardownError,
    bring_up_detached,
    build,
    teardown_namespaces,
)
from harness.topology.impair import kernel_has_netem
from harness.topology.live import Topo
from harness.topology.loader import TopologyError, load, load_named
from harness.topology.manual import bring_down, bring_up
from harness.topology.model import (
    Host,
    Impairment,
    Link,
    LinkEnd,
    Route,
    Topology,
    with_link_impairment,
    with_rates_scaled,
    with_sysctls,
)

__all__ = [
    "Host", "Impairment", "ImpairmentUnsupported", "Link", "LinkEnd", "Route", "TeardownError",
    "Topo", "Topology", "TopologyError", "bring_down", "bring_up", "bring_up_detached", "build",
    "kernel_has_netem", "load", "load_named", "teardown_namespaces", "with_link_impairment",
    "with_rates_scaled", "with_sysctls",
]

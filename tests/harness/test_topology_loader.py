"""The topology loader: every shipped file loads; every mistake names the file and the key."""

import textwrap

import pytest

from harness.paths import TOPOLOGY_DIR
from harness.topology import TopologyError, load, load_named

SHIPPED = sorted(p.stem for p in TOPOLOGY_DIR.glob("*.toml"))
VALID = """
name = "t"
[hosts.client.mptcp]
limits = { subflows = 2 }
endpoints = [{ addr = "10.0.2.1", flags = ["subflow"] }]
[hosts.server]
[[links]]
ends = ["client:10.0.1.1/24", "server:10.0.1.2/24"]
[[links]]
ends = ["client:10.0.2.1/24,fd00::1/64", "server:10.0.2.2/24"]
impair = { rate = "10mbit" }
"""


def write(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_required_topologies_are_shipped():
    assert {"single-path", "two-paths", "dual-stack", "routed", "server-signals",
            "middlebox-fallback"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_topology_loads(name):
    topo = load_named(name)
    assert topo.name == name and topo.hosts and topo.links


def test_valid_file_gives_the_model(tmp_path):
    topo = load(write(tmp_path, VALID))
    assert list(topo.hosts) == ["client", "server"]
    assert [str(a) for a in topo.addresses_of("client")] == \
        ["10.0.1.1/24", "10.0.2.1/24", "fd00::1/64"]
    assert topo.links[1].impair.rate_bit == 10_000_000
    assert topo.hosts["client"].mptcp.endpoints[0].flags == ("subflow",)


BROKEN = [
    ("name = 't'\nhosts = {}\ncolor = 1", "color", "unknown key"),
    ('hosts = { a = {} }', "name", "required key is missing"),
    ('name = "t"\n[hosts.a]\nsysctl = {}', "hosts.a.sysctl", "unknown key"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "clinet:10.0.0.2/24"]',
     "links[0].ends[1]", "unknown host 'clinet'"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "a:10.0.0.2/24"]',
     "links[0].ends", "both ends"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.300/24", "b:10.0.0.2/24"]',
     "links[0].ends[0]", "bad address or prefix"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/33", "b:10.0.0.2/24"]',
     "links[0].ends[0]", "bad address or prefix"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1", "b:10.0.0.2/24"]',
     "links[0].ends[0]", "needs a prefix length"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.1/24"]',
     "links[0].ends[1]", "also used"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.2/24"]\n'
     'impair = { delay = "10 ms" }', "links[0].impair.delay", "bad time"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.2/24"]\n'
     'impair = { loss = "150%" }', "links[0].impair.loss", "bad loss"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.2/24"]\n'
     'impair = { rate = "0mbit" }', "links[0].impair.rate", "positive"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.2/24"]\n'
     'impair = { rate = "fast" }', "links[0].impair.rate", "bad rate"),
    ('name = "t"\n[hosts.a]\n[hosts.b]\n[[links]]\nends = ["a:10.0.0.1/24", "b:10.0.0.2/24"]\n'
     'impair = { jitter = "1ms" }', "links[0].impair.jitter", "needs a delay"),
    ('name = "t"\n[hosts.a.mptcp]\nendpoints = [{ addr = "10.9.9.9" }]',
     "hosts.a.mptcp.endpoints[0].addr", "not an address of host 'a'"),
    ('name = "t"\n[hosts.a.mptcp]\nendpoints = [{ addr = "10.9.9.9", flags = ["sub"] }]',
     "hosts.a.mptcp.endpoints[0].flags[0]", "unknown endpoint flag 'sub'"),
    ('name = "t"\n[hosts.a.mptcp]\nlimits = { subflows = 9 }',
     "hosts.a.mptcp.limits.subflows", "must be 0..8"),
    ('name = "t"\n[hosts.a]\nforwarding = true\nmiddlebox = "eat-mptcp"',
     "hosts.a.middlebox", "unknown middlebox"),
    ('name = "t"\n[hosts.a]\nmiddlebox = "strip-mptcp"', "hosts.a.middlebox", "forwarding"),
    ('name = "t"\n[hosts.a]\nsysctls = { "kernel.panic" = 1 }',
     "hosts.a.sysctls.kernel.panic", "under net."),
    ('name = "t"\n[hosts.a]\nroutes = [{ to = "default", via = "10.0.9.1" }]',
     "hosts.a.routes[0].via", "on no subnet"),
    ('name = "t"\n[hosts.a]\nroutes = [{ to = "fd00::/64", via = "10.0.9.1" }]',
     "hosts.a.routes[0]", "mixes IPv4 and IPv6"),
    ('name = "t"\n[hosts.a]\nroutes = [{ to = "default", via = "10.0.9.1", metric = -1 }]',
     "hosts.a.routes[0].metric", "must be 0..4294967295"),
    ('name = "t"\n[hosts.Client]', "hosts.Client", "lowercase"),
    ('name = "t"\nhosts = 3', "hosts", "expected a table"),
]


@pytest.mark.parametrize("text, key, message", BROKEN, ids=[b[1] + ":" + b[2] for b in BROKEN])
def test_mistake_is_reported_with_file_and_key_on_one_line(tmp_path, text, key, message):
    path = write(tmp_path, text)
    with pytest.raises(TopologyError) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {key}: "), text
    assert message in text and "\n" not in text


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path, 'name = "t"\n[hosts.a\n')
    with pytest.raises(TopologyError, match=rf"^{path}: TOML syntax error: .*line 2"):
        load(path)


def test_unknown_topology_name_lists_the_known_ones():
    with pytest.raises(TopologyError, match="no topology named 'nope'.*two-paths"):
        load_named("nope")


def test_topo_check_task_prints_one_line_without_traceback(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, 'name = "t"\n[hosts.a]\ncolour = 1\n')
    proc = subprocess.run([sys.executable, "-m", "invoke", "topo.check", str(path)],
                          capture_output=True, text=True, cwd=TOPOLOGY_DIR.parent)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {path}: hosts.a.colour: unknown key (allowed: " \
        "forwarding, middlebox, mptcp, routes, sysctls)"
    assert "Traceback" not in proc.stderr + proc.stdout


def test_duplicate_host_names_the_file_and_line(tmp_path):
    path = write(tmp_path, 'name = "t"\n[hosts.a]\n[hosts.b]\n[hosts.a]\n')
    with pytest.raises(TopologyError, match=rf"^{path}: TOML syntax error: .*line 4"):
        load(path)

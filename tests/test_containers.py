"""`harness init --docker`: which running containers are the nodes, read from what
`docker container inspect` prints (made up here: the pure part), and their control template."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.containers import control_template, node_containers
from harness.errors import HarnessError


def inspected(name: str, ports: dict[str, tuple[str, str]], network: str = "zoo",
              project: str | None = None, running: bool = True) -> dict:
    return {"Name": f"/{name}", "State": {"Running": running},
            "Config": {"Labels": {"com.docker.compose.project": project} if project else {}},
            "NetworkSettings": {
                "Ports": {spec: [{"HostIp": ip, "HostPort": port}] for spec, (ip, port) in ports.items()},
                "Networks": {network: {}}}}


def node(i: int, **kw) -> dict:
    return inspected(f"shop-web-{i}", {"80/tcp": (f"127.9.1.{i}", "8080"),
                                       "21/tcp": (f"127.9.1.{i}", "2121"),
                                       "9999/tcp": (f"127.9.1.{i}", "9999")}, **kw)


def test_the_nodes_are_the_group_publishing_http_on_loopback_without_the_entry():
    lb = inspected("shop-lb", {"80/tcp": ("127.9.0.1", "8080")})
    other = inspected("elsewhere", {"80/tcp": ("0.0.0.0", "8081")}, network="other")
    stopped = node(4, running=False)
    found = node_containers([lb, node(2), node(1), other, stopped, node(3)], ["http://127.9.0.1:8080"])
    assert [c.name for c in found] == ["shop-web-1", "shop-web-2", "shop-web-3"]
    assert found[0].endpoints == {"http": "http://127.9.1.1:8080", "ftp": "ftp://127.9.1.1:2121"}


def test_several_groups_are_one_sentence_naming_them_and_a_name_picks_one():
    mixed = [node(1, project="shop"), node(2, project="shop"),
             inspected("a1", {"8080/tcp": ("127.8.1.1", "80")}, network="alpha"),
             inspected("a2", {"8080/tcp": ("127.8.1.2", "80")}, network="alpha")]
    with pytest.raises(HarnessError, match=r"alpha \(2\), shop \(2\); name the cluster's with --docker NAME"):
        node_containers(mixed, ["http://127.7.0.1:80"])
    assert [c.name for c in node_containers(mixed, [], "alpha")] == ["a1", "a2"]
    assert [c.name for c in node_containers(mixed, [], "shop")] == ["shop-web-1", "shop-web-2"]
    with pytest.raises(HarnessError, match="no group 'beta' of containers"):
        node_containers(mixed, [], "beta")


@given(st.lists(st.from_regex(r"node[0-9]{1,2}", fullmatch=True), min_size=2, max_size=5, unique=True),
       st.sampled_from(["zoo-{}", "{}.shop", "app_{}_1"]))
def test_names_holding_the_node_id_alike_become_one_template(ids, pattern):
    names = {n: pattern.format(n) for n in ids}
    assert set(control_template(names).values()) == {pattern.format("{node}")}


def test_names_that_do_not_hold_the_id_stay_as_they_are():
    names = {"is1": "shop-web-1", "is2": "shop-web-2"}
    assert control_template(names) == names

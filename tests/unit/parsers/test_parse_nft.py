"""`nft list ruleset` (text and JSON) parsing, forward policies, kube-proxy nftables mode."""

from __future__ import annotations

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.nft import (
    forward_chains,
    forward_policy,
    kube_proxy_service,
    parse_nft_json,
    parse_nft_ruleset,
)

KUBE_PROXY_FIXTURES = [
    ("nft-list-ruleset-kube-proxy.txt", parse_nft_ruleset),
    ("nft-j-list-ruleset-kube-proxy.json", parse_nft_json),
]


@pytest.fixture(params=KUBE_PROXY_FIXTURES, ids=["text", "json"])
def kube_proxy(request, fixture_text):
    name, parse = request.param
    return parse(fixture_text(name))


def test_tables_and_base_chains(kube_proxy):
    assert [(t.family, t.name) for t in kube_proxy.tables] == [
        ("inet", "hostfw"),
        ("ip", "kube-proxy"),
    ]
    forward = kube_proxy.table("inet", "hostfw").chains["forward"]
    assert (forward.type, forward.hook, forward.policy, forward.is_base) == (
        "filter",
        "forward",
        "drop",
        True,
    )
    assert not kube_proxy.table("ip", "kube-proxy").chains["services"].is_base
    assert kube_proxy.table("ip", "nope") is None


def test_forward_chains_sorted_and_one_drop_policy_drops(kube_proxy):
    chains = forward_chains(kube_proxy)

    assert [(c.table, c.name, c.policy) for c in chains] == [
        ("hostfw", "forward", "drop"),
        ("kube-proxy", "filter-forward", "accept"),
    ]
    assert forward_policy(kube_proxy) == "drop"


def test_forward_chain_rules_keep_their_text(fixture_text):
    ruleset = parse_nft_ruleset(fixture_text("nft-list-ruleset-kube-proxy.txt"))

    rules = ruleset.table("inet", "hostfw").chains["forward"].rules
    assert [r.text for r in rules] == [
        "ct state established,related accept",
        "ip daddr 10.244.0.0/16 accept",
        'iifname "eth1" oifname "eth0" accept',
    ]


def test_json_rules_are_rendered_and_keep_expr(fixture_text):
    ruleset = parse_nft_json(fixture_text("nft-j-list-ruleset-kube-proxy.json"))

    rules = ruleset.table("inet", "hostfw").chains["forward"].rules
    assert [r.text for r in rules] == [
        "ct state established,related accept",
        "ip daddr 10.244.0.0/16 accept",
        "meta iifname eth1 meta oifname eth0 accept",
    ]
    assert rules[0].expr[-1] == {"accept": None}
    assert rules[0].handle == 3


def test_sets_and_maps_with_elements(kube_proxy):
    table = kube_proxy.table("ip", "kube-proxy")

    assert [e.key for e in table.sets["cluster-ips"].elements] == [
        ("10.96.0.10",),
        ("10.96.12.34",),
        ("10.96.86.83",),
    ]
    no_endpoints = table.sets["no-endpoint-services"]
    assert no_endpoints.kind == "map"
    assert [(e.key, e.verdict, e.target, e.comment) for e in no_endpoints.elements] == [
        (("10.20.9.60", "tcp", "80"), "drop", None, "default/api-ext:http"),
        (("10.96.12.34", "tcp", "3306"), "goto", "reject-chain", "default/mysql:mysql"),
    ]


def test_kube_proxy_service_with_endpoints_is_dnat(kube_proxy):
    found = kube_proxy_service(kube_proxy, "10.96.86.83", 3306, "tcp")

    assert found.kind == "dnat"
    assert found.endpoints == ("10.244.1.10:3306", "10.244.2.11:3306")
    assert found.service == "default/mysql-read:mysql"
    assert found.evidence[0] == (
        "service-ips: 10.96.86.83 . tcp . 3306 : goto service-MRQ7H2K4-default/mysql-read/tcp/mysql"
    )
    assert found.chains[0] == "service-MRQ7H2K4-default/mysql-read/tcp/mysql"


def test_kube_proxy_service_without_endpoints_is_reject(kube_proxy):
    found = kube_proxy_service(kube_proxy, "10.96.12.34", 3306)

    assert (found.kind, found.service) == ("reject", "default/mysql:mysql")
    assert found.evidence == (
        'no-endpoint-services: 10.96.12.34 . tcp . 3306 comment "default/mysql:mysql" '
        ": goto reject-chain",
    )


def test_kube_proxy_no_local_endpoints_is_drop(kube_proxy):
    assert kube_proxy_service(kube_proxy, "10.20.9.60", 80).kind == "drop"


def test_cluster_ip_on_a_port_it_does_not_serve_is_rejected(kube_proxy):
    found = kube_proxy_service(kube_proxy, "10.96.0.10", 53, "tcp")

    assert found.kind == "reject"
    assert found.evidence[0] == "cluster-ips: 10.96.0.10"


def test_unallocated_cluster_ip_is_dropped_and_outside_is_none(kube_proxy):
    assert kube_proxy_service(kube_proxy, "10.96.1.1", 80).kind == "drop"
    assert kube_proxy_service(kube_proxy, "10.20.9.99", 80).kind == "none"


def test_no_kube_proxy_table_is_none(fixture_text):
    ruleset = parse_nft_ruleset(fixture_text("nft-list-ruleset-docker-forward-drop.txt"))

    found = kube_proxy_service(ruleset, "10.96.86.83", 3306)
    assert (found.kind, found.endpoints, found.evidence) == ("none", (), ())


@pytest.mark.parametrize(
    "name, parse",
    [
        ("nft-list-ruleset-docker-forward-drop.txt", parse_nft_ruleset),
        ("nft-j-list-ruleset-docker-forward-drop.json", parse_nft_json),
    ],
)
def test_iptables_nft_forward_drop_is_seen_through_nft(fixture_text, name, parse):
    ruleset = parse(fixture_text(name))

    assert forward_policy(ruleset) == "drop"
    assert [(c.family, c.table, c.name) for c in forward_chains(ruleset)] == [
        ("ip", "filter", "FORWARD")
    ]
    rules = ruleset.table("ip", "filter").chains["FORWARD"].rules
    assert len(rules) == 6


def test_iptables_nft_translated_kube_proxy_rules_parse(fixture_text):
    ruleset = parse_nft_ruleset(fixture_text("nft-list-ruleset-iptables-nft.txt"))

    assert forward_policy(ruleset) == "accept"
    chain = ruleset.table("ip", "nat").chains["KUBE-SEP-RDA1XK3M9QF2TLWB"]
    # Text rules are kept as nft printed them, spacing included.
    assert chain.rules[1].text == (
        "meta l4proto tcp   counter packets 0 bytes 0 dnat to 10.244.1.10:3306"
    )


def test_empty_ruleset_text_and_json(fixture_text):
    assert parse_nft_ruleset(fixture_text("nft-list-ruleset-empty.txt")).tables == ()
    assert parse_nft_json(fixture_text("nft-j-list-ruleset-empty.json")).tables == ()
    assert forward_policy(parse_nft_ruleset("")) is None


def test_warning_comments_are_kept():
    text = (
        "# Warning: table ip filter is managed by iptables-nft, do not touch!\n"
        "table ip filter {\n"
        "\tchain FORWARD {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        "\t}\n"
        "}\n"
    )

    ruleset = parse_nft_ruleset(text)

    assert ruleset.warnings == (
        "# Warning: table ip filter is managed by iptables-nft, do not touch!",
    )
    assert forward_policy(ruleset) == "accept"


def test_named_and_numeric_priorities_sort_together():
    text = (
        "table inet a {\n"
        "\tchain late { type filter hook forward priority filter + 10; policy accept; }\n"
        "}\n"
        "table ip b {\n"
        "\tchain early {\n"
        "\t\ttype filter hook forward priority -5; policy drop;\n"
        "\t}\n"
        "}\n"
        "table netdev c {\n"
        '\tchain ingress { type filter hook ingress device "eth0" priority 0; policy accept; }\n'
        "}\n"
    )

    chains = forward_chains(parse_nft_ruleset(text))

    assert [(c.name, c.priority) for c in chains] == [("early", "-5"), ("late", "filter + 10")]


def test_unknown_blocks_and_table_flags_are_tolerated():
    text = (
        "table inet f {\n"
        "\tflags dormant\n"
        "\tflowtable ft {\n"
        "\t\thook ingress priority filter\n"
        '\t\tdevices = { "eth0" }\n'
        "\t}\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter; policy drop;\n"
        "\t\tip daddr { 10.96.0.0/12,\n"
        "\t\t\t   10.244.0.0/16 } accept\n"
        "\t}\n"
        "}\n"
    )

    ruleset = parse_nft_ruleset(text)

    chain = ruleset.table("inet", "f").chains["forward"]
    assert chain.policy == "drop"
    assert [r.text for r in chain.rules] == ["ip daddr { 10.96.0.0/12, 10.244.0.0/16 } accept"]


def test_not_nft_output_raises():
    with pytest.raises(ParseError) as error:
        parse_nft_ruleset("Error: Could not process rule: Operation not permitted\n")

    assert error.value.line_no == 1


def test_not_nft_json_raises():
    with pytest.raises(ParseError, match="not nft JSON output"):
        parse_nft_json("{}")
    with pytest.raises(ParseError, match="not nft JSON output"):
        parse_nft_json("table ip filter {")

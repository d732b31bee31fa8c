"""`iptables-save` parsing, kube-proxy service lookups and FORWARD accept analysis."""

from __future__ import annotations

import pytest

from k8sreach.parsers import ParseError
from k8sreach.parsers.iptables import (
    forward_accept_rules,
    forward_accepts,
    forward_policy,
    parse_iptables_save,
    service_rules,
)


@pytest.fixture
def kube_proxy(fixture_text):
    return parse_iptables_save(fixture_text("iptables-save-kube-proxy.txt"))


def test_tables_chains_policies_and_header(kube_proxy):
    assert list(kube_proxy.tables) == ["filter", "nat"]
    assert kube_proxy.generated_by == "iptables-nft-save v1.8.9 (nf_tables)"
    forward = kube_proxy.chain("filter", "FORWARD")
    assert (forward.policy, forward.packets, forward.bytes) == ("ACCEPT", 0, 0)
    assert kube_proxy.chain("filter", "KUBE-FORWARD").policy is None
    assert kube_proxy.chain("nat", "nope") is None
    assert kube_proxy.chain("mangle", "FORWARD") is None


def test_rules_are_shell_split_with_the_original_line(kube_proxy):
    rule = kube_proxy.chain("filter", "KUBE-SERVICES").rules[0]

    assert rule.argv == (
        "-d", "10.96.12.34/32", "-p", "tcp", "-m", "comment", "--comment",
        "default/mysql:mysql has no endpoints", "-m", "tcp", "--dport", "3306",
        "-j", "REJECT", "--reject-with", "icmp-port-unreachable",
    )  # fmt: skip
    assert rule.line.startswith("-A KUBE-SERVICES -d 10.96.12.34/32 -p tcp -m comment")
    assert rule.target == "REJECT"
    assert rule.comment == "default/mysql:mysql has no endpoints"
    assert rule.values("--dport") == [(("3306",), False)]


def test_negated_options_are_marked(kube_proxy):
    masq = kube_proxy.chain("nat", "KUBE-SVC-MYSQLREADQ7H2K4ZP").rules[0]

    assert masq.values("-s") == [(("10.244.0.0/16",), True)]
    assert masq.values("-d") == [(("10.96.86.83/32",), False)]


def test_forward_policy_accept_and_drop(kube_proxy, fixture_text):
    docker = parse_iptables_save(fixture_text("iptables-save-docker-forward-drop.txt"))

    assert forward_policy(kube_proxy) == "ACCEPT"
    assert forward_policy(docker) == "DROP"
    assert (
        forward_policy(parse_iptables_save(fixture_text("iptables-save-t-nat-kube-proxy.txt")))
        is None
    )


def test_cluster_ip_with_two_endpoints_is_dnat(kube_proxy):
    found = service_rules(kube_proxy, "10.96.86.83", 3306)

    assert found.kind == "dnat"
    assert found.endpoints == ("10.244.1.10:3306", "10.244.2.11:3306")
    assert found.service == "default/mysql-read:mysql"
    assert found.chains == (
        "KUBE-SVC-MYSQLREADQ7H2K4ZP",
        "KUBE-SEP-RDA1XK3M9QF2TLWB",
        "KUBE-SEP-RDB2YL4N8PG3UMXC",
    )
    assert found.evidence[0] == (
        "-A KUBE-SERVICES -d 10.96.86.83/32 -p tcp -m comment --comment "
        '"default/mysql-read:mysql cluster IP" -m tcp --dport 3306 -j KUBE-SVC-MYSQLREADQ7H2K4ZP'
    )
    assert "--probability 0.50000000000 -j KUBE-SEP-RDA1XK3M9QF2TLWB" in found.evidence[1]
    assert found.evidence[2].endswith("-j DNAT --to-destination 10.244.1.10:3306")


def test_service_without_endpoints_is_reject_with_the_filter_rule(kube_proxy):
    found = service_rules(kube_proxy, "10.96.12.34", 3306, "tcp")

    assert found.kind == "reject"
    assert found.endpoints == ()
    assert found.service == "default/mysql:mysql"
    assert found.evidence == (
        "-A KUBE-SERVICES -d 10.96.12.34/32 -p tcp -m comment --comment "
        '"default/mysql:mysql has no endpoints" -m tcp --dport 3306 -j REJECT '
        "--reject-with icmp-port-unreachable",
    )


def test_protocol_selects_udp_or_tcp_service_port(kube_proxy):
    udp = service_rules(kube_proxy, "10.96.0.10", 53, "udp")
    tcp = service_rules(kube_proxy, "10.96.0.10", 53, "TCP")

    assert (udp.service, udp.endpoints) == (
        "kube-system/kube-dns:dns",
        ("10.244.0.5:53", "10.244.0.6:53"),
    )
    assert (tcp.service, tcp.endpoints) == ("kube-system/kube-dns:dns-tcp", ("10.244.0.5:53",))


def test_unknown_ip_port_or_protocol_is_none(kube_proxy):
    assert service_rules(kube_proxy, "10.96.1.1", 80).kind == "none"
    assert service_rules(kube_proxy, "10.96.86.83", 3307).kind == "none"
    found = service_rules(kube_proxy, "10.96.86.83", 3306, "udp")
    assert (found.kind, found.endpoints, found.evidence) == ("none", (), ())


def test_loadbalancer_ip_follows_ext_and_svl_chains(kube_proxy):
    found = service_rules(kube_proxy, "10.20.9.50", 80)

    assert found.kind == "dnat"
    assert found.endpoints == ("10.244.1.20:8080", "10.244.2.21:8080")
    assert found.chains[0] == "KUBE-EXT-WEBLBG4H6J8K0M2N"
    assert "KUBE-SVL-WEBLBG4H6J8K0M2N" in found.chains


def test_internal_traffic_policy_local_svl_chain(kube_proxy):
    found = service_rules(kube_proxy, "10.96.55.5", 8080)

    assert (found.kind, found.endpoints) == ("dnat", ("10.244.1.30:8080",))
    assert found.chains == ("KUBE-SVL-LOCALONLYR4T6Y8U0", "KUBE-SEP-LOC1GF3Q8C0W2K4X")


def test_no_local_endpoints_drop_is_reported_as_drop(kube_proxy):
    found = service_rules(kube_proxy, "10.20.9.60", 80)

    assert (found.kind, found.service) == ("drop", "default/api-ext:http")


def test_nat_table_alone_still_finds_endpoints(fixture_text):
    nat_only = parse_iptables_save(fixture_text("iptables-save-t-nat-kube-proxy.txt"))

    assert list(nat_only.tables) == ["nat"]
    assert service_rules(nat_only, "10.96.0.1", 443).endpoints == ("10.20.1.61:6443",)


def test_older_kube_proxy_masq_rule_in_kube_services_is_skipped():
    text = "\n".join(
        [
            "*nat",
            ":KUBE-SERVICES - [0:0]",
            ":KUBE-MARK-MASQ - [0:0]",
            ":KUBE-SVC-A - [0:0]",
            ":KUBE-SEP-B - [0:0]",
            "-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.96.0.20/32 -p tcp -m comment --comment "
            '"ns/web: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ',
            '-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "ns/web: cluster IP" '
            "-m tcp --dport 80 -j KUBE-SVC-A",
            "-A KUBE-SVC-A -j KUBE-SEP-B",
            "-A KUBE-SEP-B -p tcp -m tcp -j DNAT --to-destination 10.244.3.3:8080",
            "COMMIT",
        ]
    )

    found = service_rules(parse_iptables_save(text), "10.96.0.20", 80)

    assert (found.kind, found.endpoints, found.service) == ("dnat", ("10.244.3.3:8080",), "ns/web:")
    assert len(found.evidence) == 3


def test_service_chain_without_endpoints_is_none_with_evidence():
    text = "\n".join(
        [
            "*nat",
            ":KUBE-SERVICES - [0:0]",
            ":KUBE-SVC-A - [0:0]",
            "-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment "
            '--comment "ns/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-A',
            "COMMIT",
        ]
    )

    found = service_rules(parse_iptables_save(text), "10.96.0.20", 80)

    assert (found.kind, found.endpoints, found.chains) == ("none", (), ("KUBE-SVC-A",))
    assert len(found.evidence) == 1


def test_ipv6_service_rules():
    text = "\n".join(
        [
            "*nat",
            ":KUBE-SERVICES - [0:0]",
            ":KUBE-SVC-A - [0:0]",
            ":KUBE-SEP-B - [0:0]",
            "-A KUBE-SERVICES -d fd00:10:96::a/128 -p udp -m udp --dport 53 -j KUBE-SVC-A",
            "-A KUBE-SVC-A -j KUBE-SEP-B",
            "-A KUBE-SEP-B -p udp -m udp -j DNAT --to-destination [fd00:10:244::5]:53",
            "COMMIT",
        ]
    )

    found = service_rules(parse_iptables_save(text), "fd00:10:96::a", 53, "udp")

    assert found.endpoints == ("[fd00:10:244::5]:53",)


def test_forward_accepts_cidr_rules_of_kube_proxy_fixture(kube_proxy):
    accepts = forward_accepts(kube_proxy, ["10.244.0.0/16"])

    assert accepts == [
        "-A FORWARD -s 10.244.0.0/16 -j ACCEPT",
        "-A FORWARD -d 10.244.0.0/16 -j ACCEPT",
    ]
    assert forward_accepts(kube_proxy, ["10.96.0.0/12"]) == []


def test_forward_accept_rules_classify_marks_and_established_as_conditional(kube_proxy):
    rules = forward_accept_rules(kube_proxy, ["10.96.0.0/12"])

    assert [(a.reason, a.chain, a.path, a.conditions) for a in rules] == [
        ("conditional", "KUBE-FORWARD", ("FORWARD", "KUBE-FORWARD"), ("--mark 0x4000/0x4000",)),
        (
            "conditional",
            "KUBE-FORWARD",
            ("FORWARD", "KUBE-FORWARD"),
            ("--ctstate RELATED,ESTABLISHED",),
        ),
    ]


def test_docker_forward_drop_has_only_interface_accepts(fixture_text):
    docker = parse_iptables_save(fixture_text("iptables-save-docker-forward-drop.txt"))

    rules = forward_accept_rules(docker, ["10.96.0.0/12"])

    assert forward_accepts(docker, ["10.96.0.0/12"]) == []
    assert [a.conditions for a in rules] == [
        ("-o docker0", "--ctstate RELATED,ESTABLISHED"),
        ("-i docker0", "! -o docker0"),
        ("-i docker0", "-o docker0"),
    ]
    assert {a.reason for a in rules} == {"conditional"}


def test_calico_mark_accept_is_conditional_and_jump_chain_accepts_count(fixture_text):
    calico = parse_iptables_save(fixture_text("iptables-save-calico-forward.txt"))

    rules = forward_accept_rules(calico, ["10.96.0.0/12"])

    assert [(a.reason, a.path) for a in rules] == [
        ("conditional", ("FORWARD",)),
        ("cidr", ("FORWARD", "GATEWAY-ALLOW")),
        ("cidr", ("FORWARD", "GATEWAY-ALLOW")),
    ]
    assert rules[1].conditions == ("-d 10.96.0.0/12", "-p tcp", "--dport 3306")
    assert forward_accepts(calico, ["10.96.0.0/12"]) == [
        "-A GATEWAY-ALLOW -p tcp -m tcp --dport 3306 -j ACCEPT",
        "-A GATEWAY-ALLOW -j ACCEPT",
    ]
    # The jump is limited to 10.96.0.0/12, so the accept-all chain does not cover pods.
    assert forward_accepts(calico, ["10.244.0.0/16"]) == []


def test_unconditional_accept_counts_and_ends_the_walk():
    text = "\n".join(
        [
            "*filter",
            ":FORWARD DROP [0:0]",
            ":ALLOW-ALL - [0:0]",
            "-A FORWARD -j ALLOW-ALL",
            "-A FORWARD -d 10.244.0.0/16 -j ACCEPT",
            "-A ALLOW-ALL -j ACCEPT",
            "COMMIT",
        ]
    )

    rules = forward_accept_rules(parse_iptables_save(text), ["10.96.0.0/12"])

    assert [(a.reason, a.line, a.path) for a in rules] == [
        ("unconditional", "-A ALLOW-ALL -j ACCEPT", ("FORWARD", "ALLOW-ALL")),
    ]


def test_unconditional_drop_hides_later_accepts_and_return_leaves_chain():
    text = "\n".join(
        [
            "*filter",
            ":FORWARD ACCEPT [0:0]",
            ":SUB - [0:0]",
            "-A FORWARD -j SUB",
            "-A FORWARD -j DROP",
            "-A FORWARD -j ACCEPT",
            "-A SUB -j RETURN",
            "-A SUB -j ACCEPT",
            "COMMIT",
        ]
    )

    assert forward_accepts(parse_iptables_save(text), ["10.96.0.0/12"]) == []


def test_address_that_excludes_the_cidrs_is_left_out_and_negation_is_understood():
    text = "\n".join(
        [
            "*filter",
            ":FORWARD DROP [0:0]",
            "-A FORWARD -d 192.168.0.0/16 -j ACCEPT",
            "-A FORWARD ! -s 10.244.0.0/16 -d 10.96.0.0/12 -j ACCEPT",
            "-A FORWARD -s 10.20.0.0/16 -j ACCEPT",
            "-A FORWARD -m conntrack --ctstate NEW,RELATED,ESTABLISHED -d 10.96.0.0/24 -j ACCEPT",
            "COMMIT",
        ]
    )

    assert forward_accepts(parse_iptables_save(text), ["10.96.0.0/12"]) == [
        "-A FORWARD ! -s 10.244.0.0/16 -d 10.96.0.0/12 -j ACCEPT",
        "-A FORWARD -m conntrack --ctstate NEW,RELATED,ESTABLISHED -d 10.96.0.0/24 -j ACCEPT",
    ]


def test_jump_loops_are_not_followed_forever():
    text = "\n".join(
        [
            "*filter",
            ":FORWARD ACCEPT [0:0]",
            ":A - [0:0]",
            ":B - [0:0]",
            "-A FORWARD -j A",
            "-A A -j B",
            "-A B -j A",
            "-A B -d 10.96.0.0/12 -j ACCEPT",
            "COMMIT",
        ]
    )

    assert forward_accepts(parse_iptables_save(text), ["10.96.0.0/12"]) == [
        "-A B -d 10.96.0.0/12 -j ACCEPT"
    ]


def test_counters_of_iptables_save_c(fixture_text):
    ruleset = parse_iptables_save(fixture_text("iptables-save-c-filter-kube-proxy.txt"))

    rule = ruleset.chain("filter", "INPUT").rules[0]
    assert (rule.packets, rule.bytes, rule.target) == (0, 0, "KUBE-PROXY-FIREWALL")
    assert rule.line.startswith("[0:0] -A INPUT")


def test_iptables_dash_s_output_goes_to_the_default_table(fixture_text):
    ruleset = parse_iptables_save(fixture_text("iptables-S-filter-kube-proxy.txt"))

    assert list(ruleset.tables) == ["filter"]
    assert forward_policy(ruleset) == "ACCEPT"
    assert len(ruleset.chain("filter", "FORWARD").rules) == 6
    assert ruleset.chain("filter", "KUBE-FORWARD").policy is None


def test_legacy_tables_warning_is_kept(fixture_text):
    ruleset = parse_iptables_save(fixture_text("iptables-save-legacy-warning-with-stderr.txt"))

    assert ruleset.warnings == (
        "# Warning: iptables-legacy tables present, use iptables-legacy-save to see them",
    )
    assert forward_policy(ruleset) == "ACCEPT"


def test_legacy_save_reads_the_same(fixture_text):
    ruleset = parse_iptables_save(fixture_text("iptables-legacy-save-filter.txt"))

    assert ruleset.generated_by == "iptables-save v1.8.9"
    assert forward_policy(ruleset) == "DROP"


def test_empty_output_is_an_empty_ruleset():
    ruleset = parse_iptables_save("")

    assert (ruleset.tables, forward_policy(ruleset)) == ({}, None)


def test_other_text_raises_naming_the_line():
    with pytest.raises(ParseError) as error:
        parse_iptables_save("iptables-save: command not found\n")

    assert (error.value.line_no, error.value.line) == (1, "iptables-save: command not found")


def test_unbalanced_quotes_raise():
    with pytest.raises(ParseError, match="unbalanced quotes"):
        parse_iptables_save('*filter\n-A FORWARD -m comment --comment "oops -j ACCEPT\nCOMMIT\n')


def test_old_negation_syntax_and_flag_options():
    ruleset = parse_iptables_save(
        "*filter\n:FORWARD ACCEPT [0:0]\n"
        "-A FORWARD -s ! 10.0.0.0/8 -j ACCEPT\n"
        "-A FORWARD -p tcp --syn ! -d 10.96.0.0/12 -j DROP\n"
        "COMMIT\n"
    )

    first, second = ruleset.chain("filter", "FORWARD").rules
    assert first.values("-s") == [(("10.0.0.0/8",), True)]
    assert second.values("--syn") == [((), False)]
    assert second.values("-d") == [(("10.96.0.0/12",), True)]

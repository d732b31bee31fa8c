from __future__ import annotations

import pytest

from k8sreach.target import TargetError, parse_target


def test_short_form_gives_service_namespace_and_absolute_fqdn():
    t = parse_target("mysql-read.default")
    assert (t.service, t.namespace, t.port) == ("mysql-read", "default", None)
    assert t.fqdn == "mysql-read.default.svc.cluster.local."


def test_fqdn_form_with_trailing_dot_and_port():
    t = parse_target("mysql-read.db.svc.cluster.local.:3306")
    assert (t.service, t.namespace, t.port) == ("mysql-read", "db", 3306)


def test_fqdn_form_with_custom_cluster_domain():
    t = parse_target("web.shop.svc.corp.example", cluster_domain="corp.example")
    assert t.fqdn == "web.shop.svc.corp.example."


def test_fqdn_with_other_domain_than_cluster_domain_is_rejected():
    with pytest.raises(TargetError, match="differs from --cluster-domain 'cluster.local'"):
        parse_target("web.shop.svc.corp.example")


def test_bare_name_takes_namespace_option():
    t = parse_target("mysql-read", namespace="prod")
    assert (t.service, t.namespace) == ("mysql-read", "prod")


def test_bare_name_without_namespace_uses_default_namespace():
    assert parse_target("mysql-read").namespace == "default"


def test_named_port_is_kept_as_a_name():
    assert parse_target("mysql-read.default:mysql").port == "mysql"


def test_port_option_is_used_when_target_has_none():
    assert parse_target("mysql-read.default", port=3306).port == 3306


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the target is empty"),
        ("Mysql.default", "the service name 'Mysql' has capital letters"),
        ("1mysql.default", "the service name '1mysql' is not a valid DNS-1035 label"),
        ("mysql-.default", "the service name 'mysql-' is not a valid DNS-1035 label"),
        ("my_sql.default", "the service name 'my_sql' is not a valid DNS-1035 label"),
        ("a" * 64 + ".default", "is 64 characters long; at most 63"),
        ("mysql.-prod", "the namespace '-prod' is not a valid DNS-1123 label"),
        ("mysql." + "n" * 64, "the namespace 'nnnnnnnnnnnnnnnnnnnn...' is 64 characters long"),
        ("mysql..default", "has an empty name between dots"),
        ("a.b.c", "is not NAME, NAME.NAMESPACE or NAME.NAMESPACE.svc.cluster.local"),
        ("mysql.default:", "ends with ':' but names no port"),
        ("mysql.default:0", "the port 0 is out of range"),
        ("mysql.default:65536", "the port 65536 is out of range"),
        ("mysql.default:My_Port", "is neither a number"),
        ("mysql.default:a:b", "has more than one ':'"),
        ("http://x.example/app", "is a URL"),
    ],
)
def test_malformed_targets_say_what_is_wrong(text, message):
    with pytest.raises(TargetError) as err:
        parse_target(text)
    assert message in str(err.value)


def test_namespace_conflict_between_target_and_option_is_an_error():
    with pytest.raises(TargetError, match="names namespace 'default' but -n says 'prod'"):
        parse_target("mysql.default", namespace="prod")


def test_port_conflict_between_target_and_option_is_an_error():
    with pytest.raises(TargetError, match="names port 3306 but -p says 3307"):
        parse_target("mysql.default:3306", port=3307)


def test_service_name_of_63_characters_is_accepted():
    assert parse_target("a" * 63 + ".default").service == "a" * 63


def test_namespace_may_start_with_a_digit_but_service_may_not():
    assert parse_target("web.1team").namespace == "1team"


@pytest.mark.parametrize("port", ["²", "٥٣", "9" * 5000, " 53"])
def test_ports_must_be_ascii_digits_in_range(port):
    with pytest.raises(TargetError):
        parse_target(f"mysql.default:{port}")


def test_two_trailing_dots_are_an_empty_label():
    with pytest.raises(TargetError, match="empty name between dots"):
        parse_target("mysql.default..")

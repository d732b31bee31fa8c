"""Configuration text for the lab's daemons: BIRD, sshd, dnsmasq and the hosts' mount views."""

from __future__ import annotations

import shlex
from pathlib import Path

from k8sreach.lab import _plan as P

# The node (the Calico side) always opens the session: it tries at once and retries every
# second, so build() and heal() converge in about a second.
_NODE_TIMERS = """\
    hold time 6;
    keepalive time 1;
    connect delay time 0;
    connect retry time 1;
    error wait time 1, 2;
    error forget time 10;"""

# The gateway waits long before connecting itself and before retrying after an error, so a
# fault keeps showing what caused it ("Received: Administrative shutdown", "Bad peer AS")
# instead of a later "Connection refused". heal() restarts it explicitly when needed.
_GATEWAY_TIMERS = """\
    hold time 6;
    keepalive time 1;
    connect delay time 30;
    connect retry time 30;
    error wait time 10, 20;
    error forget time 30;"""


def gateway_bird_conf(log: Path) -> str:
    """Return the gateway's bird.conf: iBGP with the node, learned routes into the kernel."""
    return f"""\
log "{log}" all;
router id {P.GATEWAY_NODE_IP};

protocol device {{
    scan time 10;
}}

protocol kernel kernel4 {{
    ipv4 {{
        import none;
        export where source = RTS_BGP;
    }};
}}

protocol bgp {P.GATEWAY_BGP_PROTOCOL} {{
    description "calico node {P.NODE_IP}";
    local {P.GATEWAY_NODE_IP} as {P.BGP_AS};
    neighbor {P.NODE_IP} as {P.BGP_AS};
    direct;
{_GATEWAY_TIMERS}
    ipv4 {{
        import all;
        export none;
        gateway direct;
    }};
}}
"""


def node_bird_conf(log: Path, local_as: int = P.BGP_AS, export_blocks: bool = True) -> str:
    """Return the node's bird.conf announcing its pod block (Calico style) to the gateway."""
    export = 'where proto = "pod_blocks"' if export_blocks else "none"
    return f"""\
log "{log}" all;
router id {P.NODE_IP};

protocol device {{
    scan time 10;
}}

# Calico announces the node's IPAM block; the kernel holds a blackhole route for it and a /32
# per pod, so BIRD only needs the block as a static route.
protocol static pod_blocks {{
    ipv4;
    route {P.POD_BLOCK} blackhole;
}}

protocol bgp {P.NODE_BGP_PROTOCOL} {{
    description "edge gateway {P.GATEWAY_NODE_IP}";
    local {P.NODE_IP} as {local_as};
    neighbor {P.GATEWAY_NODE_IP} as {P.BGP_AS};
    direct;
{_NODE_TIMERS}
    ipv4 {{
        import none;
        export {export};
        next hop self;
    }};
}}
"""


def sshd_config(listen: str, host_key: Path, authorized_keys: Path, pid_file: Path) -> str:
    """Return an sshd_config for a lab host (key login for root only)."""
    return f"""\
ListenAddress {listen}:22
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PidFile {pid_file}
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 64:30:128
LogLevel INFO
Subsystem sftp internal-sftp
"""


def kube_proxy_unit(hostname: str) -> str:
    """Return a kube-proxy.service unit like a kubeadm-less install puts in /etc/systemd."""
    return f"""\
[Unit]
Description=Kubernetes Kube Proxy
Documentation=https://github.com/kubernetes/kubernetes
After=network.target

[Service]
ExecStart={P.KUBE_PROXY_PATH} --config=/var/lib/kube-proxy/config.conf \\
  --hostname-override={hostname}
Restart=on-failure
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


HEALTHY_SYSCTL_CONF = """\
# /etc/sysctl.conf - Configuration file for setting system variables
# See /etc/sysctl.d/ for additional system variables.
# (k8sreach lab: the host's own view of this file, bind-mounted for its sshd only)
"""

FORWARD_OFF_SYSCTL_CONF = (
    HEALTHY_SYSCTL_CONF
    + """\

# Uncomment the next line to enable packet forwarding for IPv4
net.ipv4.ip_forward = 0
"""
)


def forwarding_sysctl_file(hostname: str) -> str:
    """Return the sysctl.d drop-in that persists IPv4 forwarding on a lab host."""
    return f"# {hostname}: routes office traffic to the cluster\nnet.ipv4.ip_forward = 1\n"


# Mounted over the host's directories in a private mount namespace, so that commands run over
# SSH see the lab's files while the machine's own mount namespace stays untouched.
MOUNT_VIEW = (
    ("run", "/run"),
    ("etc/sysctl.conf", "/etc/sysctl.conf"),
    ("etc/sysctl.d", "/etc/sysctl.d"),
    ("bin", "/usr/local/bin"),
    ("etc/systemd/system", "/etc/systemd/system"),
    ("etc/hostname", "/etc/hostname"),
    # An empty home for root: the machine's own ~/.bashrc (pyenv and the like) would run at
    # every command over SSH and cost ~0.1 s each; a gateway's login user has a plain one.
    ("home", "/root"),
)


def mount_view_script(root: Path, hostname: str) -> str:
    """Return the sh script that builds a host's mount view, reports ready and then idles.

    It runs in new mount and UTS namespaces. The process running it anchors them: sshd and BIRD
    are later started inside with nsenter, also after a fault stopped them.
    """
    lines = ["set -e", f"hostname {shlex.quote(hostname)}"]
    for source, target in MOUNT_VIEW:
        # -n: never record these mounts in a utab/mtab file outside the lab.
        lines.append(f"mount -n --bind {shlex.quote(str(root / source))} {target}")
    lines += ["echo ready", "exec sleep infinity"]
    return "\n".join(lines)


def kube_dns_argv(root: Path, records: dict[str, str]) -> list[str]:
    """Return the dnsmasq command line playing kube-dns: authoritative for cluster.local."""
    argv = _dnsmasq_base(root, P.KUBE_DNS_POD_IP)
    argv += [f"--local=/{P.CLUSTER_DOMAIN}/", "--local-ttl=30"]
    argv += [f"--host-record={name},{ip}" for name, ip in records.items()]
    # kube-dns publishes an SRV record for each named port: _<port>._<proto>.<service FQDN>
    svc = f"{P.MYSQL_READ.name}.{P.MYSQL_READ.namespace}.svc.{P.CLUSTER_DOMAIN}"
    srv = f"_{P.MYSQL_READ.port_name}._{P.MYSQL_READ.protocol}.{svc}"
    argv.append(f"--srv-host={srv},{svc},{P.MYSQL_READ.port}")
    return argv


def dns_proxy_argv(root: Path) -> list[str]:
    """Return the dnsmasq command line playing the nginx UDP ingress in front of kube-dns."""
    argv = _dnsmasq_base(root, P.DNS_PROXY_IP)
    # nginx proxies every datagram; it does not cache, so neither does the stand-in.
    argv += [f"--server=/{P.CLUSTER_DOMAIN}/{P.KUBE_DNS_IP}", "--cache-size=0"]
    return argv


def _dnsmasq_base(root: Path, listen: str) -> list[str]:
    """Return dnsmasq options shared by both instances: no files of the machine are read."""
    return [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--bind-interfaces",
        f"--listen-address={listen}",
        f"--pid-file={root / 'dnsmasq.pid'}",
        f"--log-facility={root / 'dnsmasq.log'}",
        "--log-queries",
        "--user=root",
    ]


def kube_dns_records(mysql_read_ip: str) -> dict[str, str]:
    """Return kube-dns's A records, with mysql-read's ClusterIP given."""
    domain = P.CLUSTER_DOMAIN
    return {
        f"{P.MYSQL_READ.name}.{P.MYSQL_READ.namespace}.svc.{domain}": mysql_read_ip,
        f"{P.KUBE_DNS_UDP.name}.{P.KUBE_DNS_UDP.namespace}.svc.{domain}": P.KUBE_DNS_IP,
        # The StatefulSet's headless service and its pod's stable name.
        f"mysql.default.svc.{domain}": P.MYSQL_POD_IP,
        f"{P.MYSQL_POD}.mysql.default.svc.{domain}": P.MYSQL_POD_IP,
    }


def resolv_conf() -> str:
    """Return the client's resolv.conf: the DNS proxy, with the cluster's search domains."""
    domain = P.CLUSTER_DOMAIN
    return (
        f"nameserver {P.DNS_PROXY_IP}\n"
        f"search default.svc.{domain} svc.{domain} {domain}\n"
        "options timeout:2 attempts:2\n"
    )

#!/usr/bin/env bash
# The probes `k8sreach doctor --ssh` makes, run the way a person walks the path by hand:
# one `ssh` invocation per gateway command. bench/bench.py times this against k8sreach.
# Usage: probes.sh SSH_DEST IDENTITY KNOWN_HOSTS DNS_SERVER SERVICE_IP PORT GATEWAY
set -u
dest=$1 identity=$2 known=$3 dns=$4 svc=$5 port=$6 gw=$7
fqdn=mysql-read.default.svc.cluster.local.
ssh_opts=(-i "$identity" -o BatchMode=yes -o ConnectTimeout=2 -o IdentitiesOnly=yes
          -o UserKnownHostsFile="$known" -o StrictHostKeyChecking=yes -o LogLevel=ERROR)
on_gw() { ssh "${ssh_opts[@]}" "$dest" "$@"; }

ip route get "$svc"
dig +time=2 +tries=1 @"$dns" "$fqdn" A +short
on_gw cat /proc/sys/net/ipv4/ip_forward
on_gw iptables-save
on_gw nft -j list ruleset
on_gw find /etc/sysctl.d /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d \
  /lib/sysctl.d -maxdepth 1 -name '*.conf'
on_gw grep -H -n -e "''" -- /etc/sysctl.d/*.conf /etc/sysctl.conf
on_gw ip -o route get "$gw"
on_gw grep -H -e "''" -- /proc/sys/net/ipv4/conf/all/rp_filter
on_gw find /var/run/calico/bird.ctl /run/bird/bird.ctl -maxdepth 0 -type s
on_gw birdc -s /run/bird/bird.ctl show protocols all
on_gw ip -j route show table all
on_gw cat /etc/systemd/system/kube-proxy.service
on_gw stat -L -c "'%F|%a|%s'" -- /usr/local/bin/kube-proxy
on_gw head -c 64 -- /usr/local/bin/kube-proxy | od -c | head -2
on_gw uname -m
on_gw sha256sum -- /usr/local/bin/kube-proxy
on_gw /usr/local/bin/kube-proxy --version
timeout 2 bash -c "exec 3<>/dev/tcp/$svc/$port" && echo "tcp $svc:$port open"

#!/usr/bin/env bash
# bench/dhcp.sh — DHCPv4 4-way exchanges/s of leazzard, dnsmasq and kea-dhcp4 under perfdhcp,
# same pool, same lease time, fresh state per server. Run by hand as root; never by CI.
#
# Network: two namespaces joined by a veth pair, nothing on the host is touched:
#   lzb-dh-srv  eth0 198.18.0.2/16  (the server under test; the Proxmox simulator on 127.0.0.1)
#   lzb-dh-cli  eth0 198.18.0.3/16  (perfdhcp; it talks as a relay: giaddr 198.18.0.3, replies
#                                    to 198.18.0.3:67)
# Pool: NETWORK 198.18.0.0/16, range 198.18.1.0–198.18.255.250 (65,275 addresses). perfdhcp
# draws MACs from CLIENTS (-R) values, so at most CLIENTS leases exist; 20,000 stays far
# below the 80% leazzard lends to unknown clients (it keeps 20% for Proxmox guests).
# Sweep: for each server, RATES in order, STEP seconds each; the sweep of a server stops at
# the first rate whose DISCOVER-OFFER or REQUEST-ACK drops exceed 1%. The table shows the
# highest rate with <1% drops on both exchanges.
#
# Needs: perfdhcp (apt: kea-admin), kea-dhcp4 (apt: kea-dhcp4-server), dnsmasq (apt:
# dnsmasq-base), cargo, iproute2; strace optional (fsync count of leazzard).
# Usage: sudo bench/dhcp.sh
# Env [default]: RATES ["500 1000 2000 4000 6000 8000 10000 12000 16000"], STEP [10],
#   CLIENTS [20000], SERVERS ["leazzard dnsmasq kea"], ARP [false] (leazzard ARP_ENABLED),
#   SKIP_BUILD [], LEASE [12h]
set -euo pipefail
RATES=${RATES:-"500 1000 2000 4000 6000 8000 10000 12000 16000"}
STEP=${STEP:-10}
CLIENTS=${CLIENTS:-20000}
SERVERS=${SERVERS:-"leazzard dnsmasq kea"}
ARP=${ARP:-false}
LEASE=${LEASE:-12h}
SKIP_BUILD=${SKIP_BUILD:-}
SRV=lzb-dh-srv CLI=lzb-dh-cli SRV_IP=198.18.0.2 CLI_IP=198.18.0.3 NETWORK=198.18.0.0/16
LO=198.18.1.0 HI=198.18.255.250 MASK=255.255.0.0
ROOT=$(cd "$(dirname "$0")/.." && pwd)

say() { printf '%s\n' "$*" >&2; }
die() { say "dhcp.sh: $*"; exit 1; }
[[ $STEP =~ ^[0-9]+$ && $CLIENTS =~ ^[0-9]+$ ]] && (( STEP >= 1 && STEP <= 300 )) || die "STEP 1..300, CLIENTS a number"
(( $(id -u) == 0 )) || die "needs root (network namespaces)"
for p in perfdhcp:kea-admin kea-dhcp4:kea-dhcp4-server dnsmasq:dnsmasq-base ip:iproute2; do
    command -v "${p%%:*}" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "${p%%:*}" >/dev/null \
        || die "${p%%:*} missing: apt-get install ${p#*:}"
done
export PATH=$PATH:/usr/sbin:/sbin

TMP=$(mktemp -d -t leazzard-dhcpbench.XXXXXX)
PIDS=()
stop_pid() { local pid=$1 i; kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    ip netns del "$SRV" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    [[ -n ${KEEP_TMP:-} ]] && say "kept $TMP" || rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----
if [[ -z $SKIP_BUILD ]]; then
    say "building leazzard and examples (release)…"
    (cd "$ROOT" && cargo build --release --bins --examples --quiet) || die "cargo build failed"
fi
LEAZZARD=$ROOT/target/release/leazzard SIMULATE=$ROOT/target/release/examples/simulate
[[ -x $LEAZZARD && -x $SIMULATE ]] || die "build leazzard and examples first"

# ---- namespaces ----
for ns in "$SRV" "$CLI"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true; done
ip -n "$SRV" link add eth0 type veth peer name eth0 netns "$CLI"
ip -n "$SRV" addr add "$SRV_IP/16" dev eth0; ip -n "$CLI" addr add "$CLI_IP/16" dev eth0
ip -n "$SRV" link set eth0 up; ip -n "$CLI" link set eth0 up
IN_SRV=(ip netns exec "$SRV") IN_CLI=(ip netns exec "$CLI")

# ---- servers: start_<name> DIR sets SERVER_PID and waits until port 67 is bound ----
wait_port67() { local pid=$1 i
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || return 1
        [[ -n $("${IN_SRV[@]}" ss -Hlun 'sport = :67') ]] && return 0; sleep 0.2; done; return 1; }

start_leazzard() { local d=$1 line i
    mkfifo "$d/sim.stdin"
    "${IN_SRV[@]}" "$SIMULATE" 10 --network "$NETWORK" <"$d/sim.stdin" >"$d/sim.out" 2>"$d/sim.err" &
    SIM_PID=$!; PIDS+=("$SIM_PID"); exec 3>"$d/sim.stdin"
    for ((i = 0; i < 100; i++)); do [[ -s $d/sim.out ]] && break; sleep 0.1; done
    read -r line <"$d/sim.out" || die "simulator printed nothing"
    declare -A S=(); for kv in $line; do S[${kv%%=*}]=${kv#*=}; done
    mkdir -p "$d/data"
    "${IN_SRV[@]}" env PROXMOX_HOST="${S[HOST]}" API_TOKEN_ID="${S[TOKEN_ID]}" API_TOKEN_SECRET="${S[TOKEN_SECRET]}" \
        PROXMOX_FINGERPRINT="${S[FINGERPRINT]}" NETWORK_CIDR="$NETWORK" DNS_DOMAIN=lab \
        DNS_LISTEN=127.0.0.1:5300 HTTP_LISTEN= DHCP_ENABLED=true ARP_ENABLED="$ARP" DHCP_INTERFACE=eth0 \
        DHCP_RANGE="$LO,$HI,$MASK,$LEASE" DHCP_UNKNOWN_CLIENTS=allow DATA_DIR="$d/data" \
        DNS_UPSTREAM=127.0.0.1:9 LOG_LEVEL=WARN "$LEAZZARD" run </dev/null >"$d/server.log" 2>&1 &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); }
stop_leazzard_extra() { stop_pid "$SIM_PID"; exec 3>&- || true; }

start_dnsmasq() { local d=$1
    # --no-ping: no ICMP check before an offer (leazzard runs without ARP probes by default).
    "${IN_SRV[@]}" dnsmasq --no-daemon --port=0 --no-resolv --no-hosts --interface=eth0 --bind-interfaces \
        --dhcp-range="$LO,$HI,$MASK,$LEASE" --dhcp-leasefile="$d/dnsmasq.leases" --dhcp-lease-max=100000 \
        --no-ping --quiet-dhcp --pid-file= --user=root --group=root --log-facility="$d/server.log" \
        </dev/null >>"$d/server.log" 2>&1 &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); }

start_kea() { local d=$1 s=$((12 * 3600))
    [[ $LEASE =~ ^([0-9]+)h$ ]] && s=$((BASH_REMATCH[1] * 3600))
    cat >"$d/kea.json" <<JSON
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "eth0" ], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "name": "$d/kea-leases4.csv", "lfc-interval": 0 },
  "valid-lifetime": $s,
  "subnet4": [ { "id": 1, "subnet": "$NETWORK", "pools": [ { "pool": "$LO - $HI" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$d/server.log" } ] } ]
} }
JSON
    "${IN_SRV[@]}" env KEA_PIDFILE_DIR="$d" KEA_LOCKFILE_DIR="$d" kea-dhcp4 -c "$d/kea.json" \
        </dev/null >>"$d/server.log" 2>&1 &
    SERVER_PID=$!; PIDS+=("$SERVER_PID"); }

# Port 67 bound is not "serving" (Kea opens its sockets, then starts; leazzard syncs with
# Proxmox first): wait, bounded, until a 1-client, 1-second perfdhcp run gets an OFFER, so start-up time is
# never counted as drops. Costs one lease (of CLIENTS).
ready() { local i
    for ((i = 0; i < 20; i++)); do
        timeout 5 "${IN_CLI[@]}" perfdhcp -4 -r 5 -p 1 -R 1 -b mac=02:00:5e:ff:ff:fe -l eth0 "$SRV_IP" 2>&1 \
            | awk '/DISCOVER-OFFER/ {f=1} f && /received packets:/ { ok = $3 > 0; f = 0 } END { exit !ok }' && return 0
        sleep 0.5
    done; return 1; }

# ---- perfdhcp: prints "achieved drop_do drop_ra" (percent) ----
perf_run() { local rate=$1 out=$2
    timeout $((STEP + 30)) "${IN_CLI[@]}" perfdhcp -4 -r "$rate" -p "$STEP" -R "$CLIENTS" -l eth0 "$SRV_IP" >"$out" 2>&1 || true
    awk '/^\*\*\*Rate statistics\*\*\*/ {r=1} r && /Rate:/ && !done { for (i=1;i<=NF;i++) if ($i=="Rate:") { ach=$(i+1); done=1 } }
         /drops ratio:/ { v=$3; gsub("%","",v); d[n++]=v }
         END { if (ach=="") ach="0"; printf "%s %s %s\n", ach, (n>0?d[0]:"100"), (n>1?d[1]:"100") }' "$out"; }

declare -A BEST ACH DROPS FAIL
for srv in $SERVERS; do
    d=$TMP/$srv; mkdir -p "$d"; BEST[$srv]=0; ACH[$srv]=0; DROPS[$srv]="-"; FAIL[$srv]="-"
    for rate in $RATES; do
        rm -rf "${d:?}"/*; SIM_PID=
        "start_$srv" "$d"
        wait_port67 "$SERVER_PID" || { tail -20 "$d/server.log" >&2; die "$srv did not bind port 67"; }
        ready "$srv" || { tail -20 "$d/server.log" >&2; die "$srv does not answer DISCOVERs"; }
        read -r ach ddo dra < <(perf_run "$rate" "$d/perf.$rate")
        cp "$d/perf.$rate" "$TMP/perf.$srv.$rate.txt"
        say "$(printf '%-9s rate %6s: achieved %9s ex/s  drops DO %6s%%  RA %6s%%' "$srv" "$rate" "$ach" "$ddo" "$dra")"
        stop_pid "$SERVER_PID"; [[ $srv == leazzard ]] && stop_leazzard_extra
        if awk -v a="$ddo" -v b="$dra" 'BEGIN { exit !(a < 1 && b < 1) }'; then
            BEST[$srv]=$rate ACH[$srv]=$ach DROPS[$srv]="$ddo/$dra"
        else FAIL[$srv]="$rate ($ddo/$dra%)"; break; fi
    done
done

printf '\nperfdhcp -4 -r RATE -p %s -R %s -l eth0 %s   (relay, giaddr %s; leazzard ARP_ENABLED=%s)\n' \
    "$STEP" "$CLIENTS" "$SRV_IP" "$CLI_IP" "$ARP"
printf '%-9s %12s %14s %14s %9s %11s  %s\n' server "max rate<1%" "exchanges/s" "drops DO/RA%" "vs kea" "vs dnsmasq" "first rate >1% drops"
for srv in $SERVERS; do
    awk -v s="$srv" -v m="${BEST[$srv]}" -v a="${ACH[$srv]}" -v dr="${DROPS[$srv]}" -v k="${ACH[kea]:-0}" -v q="${ACH[dnsmasq]:-0}" -v f="${FAIL[$srv]}" \
        'BEGIN { printf "%-9s %12s %14.0f %14s %9s %11s  %s\n", s, m, a, dr, (k>0?sprintf("%.2f",a/k):"-"), (q>0?sprintf("%.2f",a/q):"-"), f }'
done

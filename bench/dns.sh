#!/usr/bin/env bash
# bench/dns.sh — DNS throughput of leazzard, dnsmasq and NSD serving the same names.
#
# What it does, in one run on loopback (127.0.0.1 only, high ports, no root needed):
#   1. builds leazzard and the `simulate` example in release;
#   2. starts the simulated Proxmox API with $GUESTS guests (bench-0001.lab …, static
#      addresses in $NETWORK) and `leazzard run` against it; waits until dig answers;
#   3. starts dnsmasq (the same names from a hosts file, --local=/lab/) and NSD (a zone file
#      with the same A records, plus the reverse zones, SOA and NS);
#   4. runs the same dnsperf command against each server in turn ($ROUNDS times, the
#      servers interleaved, each round preceded by a short warm-up) and prints a table:
#      queries/s, queries lost, kernel receive-buffer drops on the server's sockets, server
#      CPU time per answered query, and the throughput ratios to dnsmasq and to NSD.
#
# Needs (installs nothing): cargo, dig (apt: bind9-dnsutils), dnsperf (apt: dnsperf),
# nsd (apt: nsd), dnsmasq (apt: dnsmasq-base), shuf (coreutils).
#
# Usage:  bench/dns.sh            (about 3 min with the defaults, plus the build)
# Environment (defaults in brackets):
#   DURATION [15]      seconds of measurement per server and round (dnsperf -l)
#   ROUNDS [3]         rounds; the table shows the median and best qps, the summed losses
#   CLIENTS [16]       dnsperf -c: client sockets (source ports)
#   THREADS [1]        dnsperf -T
#   OUTSTANDING [100]  dnsperf -q: queries in flight at most
#   MAXQPS []          dnsperf -Q (empty: no limit, i.e. maximum throughput)
#   DNSPERF_EXTRA []   more dnsperf flags, e.g. "-e" for EDNS queries
#   WARMUP [2]         seconds of unmeasured load before each measurement
#   GUESTS [1000]      names served
#   PTR_PERCENT [0]    share of the query file that is PTR lookups of the same addresses
#   NETWORK [198.18.0.0/22]  the lab network (its /24s get reverse zones)
#   PORT_BASE [25353]  leazzard on PORT_BASE, dnsmasq on +1, NSD on +2 (UDP and TCP); when
#                      not set, the next free triple in steps of 10 is taken
#   NSD_SERVERS [nproc]  NSD server-count (leazzard uses one UDP thread per core too)
#   SKIP_BUILD []      1: use the binaries already in target/release
#   QUIET_WAIT [30]    before each measurement, wait up to this many seconds for the machine
#                      to be ≥ 85% idle (other work on the box skews the ratios; the "other"
#                      column shows how much there was)
#
# Choice of dnsperf parameters (tried on the 2-core development box: -T 1/2, -c 1/4/8/16,
# -q 100/200/500/1000): dnsperf runs on the same 2 cores as the server, so every setting
# measures "server + load generator sharing the CPUs".
# - -T 1: dnsperf -T N starts N sender and N receiver threads, so -T 1 is already one
#   thread per core. -T 2 raised all three servers' figures by similar factors (the ratios
#   stayed within the noise) while putting 4 busy dnsperf threads on 2 cores.
# - -c 16: leazzard and NSD read one SO_REUSEPORT socket per core, and the kernel picks the
#   socket by a hash of the client's address and port. With -c 1 everything lands on one
#   socket (one server thread), with -c 4 the split is often 3:1 or 4:0 (seen as 70/30 thread
#   CPU), which made runs differ by ±25%; 16 source ports spread evenly. dnsmasq (one
#   thread) does not care.
# - -q 100 (dnsperf's default) keeps every server busy. With -q 500 or 1000, dnsperf's own
#   sockets overflow and it reports "lost" queries that no server dropped (the "cldrop"
#   column shows them), so large -q measures dnsperf, not the server.
# - no -Q: maximum throughput.
# dnsmasq being single-threaded is less of a handicap here than on a bigger machine: it
# leaves dnsperf a whole core. The "cpu/q" column (server CPU time per answered query) is the
# steadier efficiency figure when load generator and servers compete; "other" says how much
# CPU something else took during a measurement (a busy box makes the ratios unreliable, and
# rounds run interleaved so such noise hits every server alike).
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-16}
THREADS=${THREADS:-1}
OUTSTANDING=${OUTSTANDING:-100}
MAXQPS=${MAXQPS:-}
DNSPERF_EXTRA=${DNSPERF_EXTRA:-}
WARMUP=${WARMUP:-2}
GUESTS=${GUESTS:-1000}
PTR_PERCENT=${PTR_PERCENT:-0}
NETWORK=${NETWORK:-198.18.0.0/22}
PORT_BASE_SET=${PORT_BASE:+1}
PORT_BASE=${PORT_BASE:-25353}
NSD_SERVERS=${NSD_SERVERS:-$(nproc)}
SKIP_BUILD=${SKIP_BUILD:-}
QUIET_WAIT=${QUIET_WAIT:-30}
DOMAIN=lab

say() { printf '%s\n' "$*" >&2; }
die() { say "dns.sh: $*"; exit 1; }

for v in DURATION ROUNDS CLIENTS THREADS OUTSTANDING WARMUP GUESTS PTR_PERCENT PORT_BASE NSD_SERVERS QUIET_WAIT; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number (got '${!v}')"
done
[[ -z $MAXQPS || $MAXQPS =~ ^[0-9]+$ ]] || die "MAXQPS must be a whole number or empty"
(( ROUNDS >= 1 && ROUNDS <= 20 && DURATION >= 1 && DURATION <= 600 )) \
    || die "ROUNDS must be 1..20 and DURATION 1..600"
(( PTR_PERCENT <= 100 )) || die "PTR_PERCENT must be 0..100"

# ---- prerequisites ---------------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt package: $2)"); }
need dnsperf dnsperf
need nsd nsd
need dnsmasq dnsmasq-base
need dig bind9-dnsutils
need shuf coreutils
need cargo "rustup / cargo"
if (( ${#missing[@]} )); then
    say "dns.sh: missing tools:"
    for m in "${missing[@]}"; do say "  $m"; done
    say "install with: apt-get install -y dnsperf nsd dnsmasq-base bind9-dnsutils"
    exit 1
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port_free() { [[ -z $(ss -Hlun "sport = :$1" 2>/dev/null) && -z $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
# An explicit PORT_BASE must be free; the default moves up (bounded) past ports in use.
for ((try = 0; try < 20; try++)); do
    if port_free "$PORT_BASE" && port_free $((PORT_BASE + 1)) && port_free $((PORT_BASE + 2)); then break; fi
    [[ -n ${PORT_BASE_SET:-} ]] && die "port $PORT_BASE, $((PORT_BASE + 1)) or $((PORT_BASE + 2)) is in use; set another PORT_BASE"
    PORT_BASE=$((PORT_BASE + 10))
done
(( try < 20 )) || die "no free ports found from the default PORT_BASE up; set PORT_BASE"
LZ_PORT=$PORT_BASE
DM_PORT=$((PORT_BASE + 1))
NSD_PORT=$((PORT_BASE + 2))

# ---- cleanup: every process we start is recorded here and stopped by PID ----------------
TMP=$(mktemp -d -t leazzard-dnsbench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$? pid i
    trap - EXIT INT TERM
    exec 3>&- 2>/dev/null || true   # closes the simulator's stdin: it exits by itself too
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ------------------------------------------------------------------------------
if [[ -z $SKIP_BUILD ]]; then
    say "building leazzard and examples (release)…"
    (cd "$ROOT" && cargo build --release --bins --examples --quiet) || die "cargo build failed"
fi
LEAZZARD=$ROOT/target/release/leazzard
SIMULATE=$ROOT/target/release/examples/simulate
[[ -x $LEAZZARD && -x $SIMULATE ]] || die "$LEAZZARD or $SIMULATE missing (build them, or unset SKIP_BUILD)"

# ---- the simulated Proxmox API ----------------------------------------------------------
mkfifo "$TMP/sim.stdin"
"$SIMULATE" "$GUESTS" --network "$NETWORK" --hosts "$TMP/hosts" \
    <"$TMP/sim.stdin" >"$TMP/sim.out" 2>"$TMP/sim.err" &
PIDS+=($!)
exec 3>"$TMP/sim.stdin"   # held open until we exit: the simulator lives as long as we do
for ((i = 0; i < 100; i++)); do
    [[ -s $TMP/sim.out ]] && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$TMP/sim.err" >&2; die "the simulator failed to start"; }
    sleep 0.1
done
read -r SIM_LINE <"$TMP/sim.out" || die "the simulator printed nothing in 10 s"
declare -A SIM=()
for kv in $SIM_LINE; do SIM[${kv%%=*}]=${kv#*=}; done
[[ -n ${SIM[HOST]:-} && -n ${SIM[TOKEN_SECRET]:-} ]] || die "unexpected simulator output: $SIM_LINE"

# ---- names and query file -----------------------------------------------------------------
# hosts: "ADDR NAME" for every guest (written by the simulator, the single source of truth).
awk -v d="$DOMAIN" '{ print $1, $2 "." d }' "$TMP/hosts" >"$TMP/hosts.fqdn"
FIRST_NAME=$(awk 'NR == 1 { print $2; exit }' "$TMP/hosts.fqdn")
LAST_NAME=$(awk 'END { print $2 }' "$TMP/hosts.fqdn")
{
    awk '{ print $2, "A" }' "$TMP/hosts.fqdn"
    if (( PTR_PERCENT > 0 )); then
        # PTR_PERCENT of the file's lines: n_ptr = n_a * p / (100 - p), at least one each.
        n=$(wc -l <"$TMP/hosts.fqdn")
        if (( PTR_PERCENT == 100 )); then nptr=$n; else nptr=$(( (n * PTR_PERCENT + 99 - PTR_PERCENT) / (100 - PTR_PERCENT) )); fi
        awk -v want="$nptr" '{ a[NR] = $1 } END {
            for (i = 0; i < want; i++) { split(a[i % NR + 1], o, "."); print o[4] "." o[3] "." o[2] "." o[1] ".in-addr.arpa PTR" } }' \
            "$TMP/hosts.fqdn"
    fi
} | { if (( PTR_PERCENT == 100 )); then grep ' PTR$'; else cat; fi; } | shuf >"$TMP/queries"
NQUERIES=$(wc -l <"$TMP/queries")

# ---- leazzard -------------------------------------------------------------------------------
mkdir -p "$TMP/leazzard"
env PROXMOX_HOST="${SIM[HOST]}" API_TOKEN_ID="${SIM[TOKEN_ID]}" API_TOKEN_SECRET="${SIM[TOKEN_SECRET]}" \
    PROXMOX_FINGERPRINT="${SIM[FINGERPRINT]}" NETWORK_CIDR="$NETWORK" DNS_DOMAIN="$DOMAIN" \
    DNS_LISTEN="127.0.0.1:$LZ_PORT" HTTP_LISTEN= DHCP_ENABLED=false ARP_ENABLED=false \
    DATA_DIR="$TMP/leazzard" DNS_UPSTREAM=127.0.0.1:9 LOG_LEVEL=WARN \
    "$LEAZZARD" run </dev/null >"$TMP/leazzard.log" 2>&1 &
LZ_PID=$!
PIDS+=("$LZ_PID")

# Waits (bounded) until the server on port $2 answers $3 with an address; $1 names it.
wait_for_answer() {
    local what=$1 port=$2 name=$3 pid=$4 i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if [[ -n $(dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" "$name" A 2>/dev/null | grep -E '^[0-9.]+$') ]]; then
            return 0
        fi
        sleep 0.2
    done
    say "dns.sh: $what did not answer $name within 30 s"
    return 1
}
wait_for_answer leazzard "$LZ_PORT" "$LAST_NAME" "$LZ_PID" || { tail -20 "$TMP/leazzard.log" >&2; die "leazzard failed to start"; }

# ---- dnsmasq --------------------------------------------------------------------------------
dnsmasq --no-daemon --no-resolv --no-hosts --addn-hosts="$TMP/hosts.fqdn" \
    --port="$DM_PORT" --listen-address=127.0.0.1 --bind-interfaces \
    --local=/$DOMAIN/ --local-ttl=30 --cache-size=10000 --dns-forward-max=10000 \
    --pid-file= --user="$(id -un)" --group="$(id -gn)" --log-facility="$TMP/dnsmasq.log" \
    </dev/null >"$TMP/dnsmasq.out" 2>&1 &
DM_PID=$!
PIDS+=("$DM_PID")
wait_for_answer dnsmasq "$DM_PORT" "$LAST_NAME" "$DM_PID" || { cat "$TMP/dnsmasq.out" "$TMP/dnsmasq.log" >&2 2>/dev/null; die "dnsmasq failed to start"; }

# ---- NSD ------------------------------------------------------------------------------------
mkdir -p "$TMP/nsd"
SERIAL=$(date +%s)
soa() { printf '$TTL 30\n@ IN SOA ns.%s. hostmaster.%s. %s 3600 600 86400 30\n@ IN NS ns.%s.\n' "$DOMAIN" "$DOMAIN" "$SERIAL" "$DOMAIN"; }
{
    printf '$ORIGIN %s.\n' "$DOMAIN"
    soa
    printf 'ns IN A 127.0.0.1\n'
    awk -v d=".$DOMAIN" '{ n = $2; sub(d "$", "", n); print n, "IN A", $1 }' "$TMP/hosts.fqdn"
} >"$TMP/nsd/$DOMAIN.zone"
# One reverse zone per /24 that holds a guest (leazzard has one per /24 of NETWORK).
REVZONES=$(awk '{ split($1, o, "."); print o[3] "." o[2] "." o[1] ".in-addr.arpa" }' "$TMP/hosts.fqdn" | sort -u)
for z in $REVZONES; do
    {
        printf '$ORIGIN %s.\n' "$z"
        soa
        awk -v z="$z" '{ split($1, o, "."); if (o[3] "." o[2] "." o[1] ".in-addr.arpa" == z) print o[4], "IN PTR", $2 "." }' "$TMP/hosts.fqdn"
    } >"$TMP/nsd/$z.zone"
done
{
    cat <<EOF
server:
    ip-address: 127.0.0.1@$NSD_PORT
    port: $NSD_PORT
    do-ip6: no
    server-count: $NSD_SERVERS
    reuseport: yes
    username: ""
    chroot: ""
    zonesdir: "$TMP/nsd"
    database: ""
    zonelistfile: "$TMP/nsd/zone.list"
    xfrdfile: "$TMP/nsd/xfrd.state"
    xfrdir: "$TMP/nsd"
    pidfile: "$TMP/nsd/nsd.pid"
    logfile: "$TMP/nsd/nsd.log"
    verbosity: 0
    hide-version: yes
remote-control:
    control-enable: no
EOF
    for z in "$DOMAIN" $REVZONES; do printf 'zone:\n    name: "%s"\n    zonefile: "%s.zone"\n' "$z" "$z"; done
} >"$TMP/nsd/nsd.conf"
nsd-checkconf "$TMP/nsd/nsd.conf" >&2 || die "generated NSD config rejected (see above)"
nsd -d -c "$TMP/nsd/nsd.conf" </dev/null >"$TMP/nsd.out" 2>&1 &
NSD_PID=$!
PIDS+=("$NSD_PID")
wait_for_answer NSD "$NSD_PORT" "$LAST_NAME" "$NSD_PID" || { cat "$TMP/nsd.out" "$TMP/nsd/nsd.log" >&2 2>/dev/null; die "NSD failed to start"; }

# Every server must give the same answer for the first name (catches a wrong setup).
for p in $LZ_PORT $DM_PORT $NSD_PORT; do
    got=$(dig +short +time=1 +tries=2 @127.0.0.1 -p "$p" "$FIRST_NAME" A)
    want=$(awk -v n="$FIRST_NAME" '$2 == n { print $1 }' "$TMP/hosts.fqdn")
    [[ $got == "$want" ]] || die "port $p answers '$got' for $FIRST_NAME, expected $want"
done

# ---- measurement ----------------------------------------------------------------------------
# CPU time (user + system) of a process and its live descendants (NSD forks two levels
# deep), in clock ticks.
HZ=$(getconf CLK_TCK)
cpu_ticks() {
    local pids="$1" frontier="$1" next p c total=0 f depth
    for ((depth = 0; depth < 4; depth++)); do
        next=""
        for p in $frontier; do
            for c in $(pgrep -P "$p" 2>/dev/null); do next+=" $c"; done
        done
        [[ -z $next ]] && break
        pids+="$next"; frontier=$next
    done
    for p in $pids; do
        [[ -r /proc/$p/stat ]] || continue
        f=$(sed 's/^.*) //' "/proc/$p/stat")
        set -- $f
        total=$((total + ${12} + ${13}))   # utime, stime (fields 14, 15 of stat)
    done
    echo "$total"
}
# Receive-buffer drops summed over the UDP sockets bound to 127.0.0.1:$1.
udp_drops() {
    local hex
    hex=$(printf '0100007F:%04X' "$1")
    awk -v a="$hex" '$2 == a { d += $NF } END { print d + 0 }' /proc/net/udp
}

# Receive-buffer drops on every UDP socket of the machine (the server's own are subtracted
# to get the load generator's: a "lost" query with no server drop was dropped at dnsperf).
all_udp_drops() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp; }
# Busy CPU ticks of the whole machine (user + nice + system; interrupts are left out since
# loopback packet processing shows up there whoever sends).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat; }

# Waits (at most QUIET_WAIT s) until the machine is at least 85% idle over one second, so a
# measurement does not start in the middle of somebody's compile.
wait_quiet() {
    local i b0 b1 t0 t1
    for ((i = 0; i < QUIET_WAIT; i++)); do
        read -r b0 t0 < <(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        sleep 1
        read -r b1 t1 < <(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
        (( (b1 - b0) * 100 <= 15 * (t1 - t0 > 0 ? t1 - t0 : 1) )) && return 0
        (( i == 0 )) && say "  waiting (up to ${QUIET_WAIT}s) for other processes to leave the CPU idle…"
    done
    return 0
}

DNSPERF_ARGS=(-s 127.0.0.1 -d "$TMP/queries" -c "$CLIENTS" -T "$THREADS" -q "$OUTSTANDING")
[[ -n $MAXQPS ]] && DNSPERF_ARGS+=(-Q "$MAXQPS")
# shellcheck disable=SC2206
[[ -n $DNSPERF_EXTRA ]] && DNSPERF_ARGS+=($DNSPERF_EXTRA)

SERVERS=(leazzard dnsmasq nsd)
declare -A PORT=([leazzard]=$LZ_PORT [dnsmasq]=$DM_PORT [nsd]=$NSD_PORT)
declare -A SPID=([leazzard]=$LZ_PID [dnsmasq]=$DM_PID [nsd]=$NSD_PID)
declare -A QPS_LIST=() SENT=() LOST=() DROPS=() CDROPS=() TICKS=() DONE=() OTHER=()

say "dnsperf ${DNSPERF_ARGS[*]} -p PORT -l $DURATION  ($NQUERIES queries in the file, $(nproc) cores, $ROUNDS round(s))"
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${SERVERS[@]}"; do
        port=${PORT[$s]}
        kill -0 "${SPID[$s]}" 2>/dev/null || die "$s is no longer running"
        wait_quiet
        if (( WARMUP > 0 )); then
            timeout $((WARMUP + 30)) dnsperf "${DNSPERF_ARGS[@]}" -p "$port" -l "$WARMUP" >/dev/null 2>&1 || true
        fi
        d0=$(udp_drops "$port"); a0=$(all_udp_drops); c0=$(cpu_ticks "${SPID[$s]}"); b0=$(busy_ticks)
        t0=$(date +%s%N)
        # bash's `time` gives dnsperf's own CPU time (user + sys seconds) on fd 2 of the group.
        out=$( { TIMEFORMAT='DNSPERF_CPU %U %S'; time timeout $((DURATION + 60)) dnsperf "${DNSPERF_ARGS[@]}" -p "$port" -l "$DURATION" 2>&1; } 2>&1) \
            || { say "$out"; die "dnsperf against $s failed"; }
        t1=$(date +%s%N)
        c1=$(cpu_ticks "${SPID[$s]}"); d1=$(udp_drops "$port"); a1=$(all_udp_drops); b1=$(busy_ticks)
        # CPU used by neither the server nor dnsperf, as % of the machine (other workloads).
        other=$(awk -v b="$((b1 - b0))" -v c="$((c1 - c0))" -v hz="$HZ" -v t="$((t1 - t0))" -v n="$(nproc)" \
            -v dp="$(awk '/^DNSPERF_CPU/ { print $2 + $3 }' <<<"$out")" \
            'BEGIN { o = (b - c) / hz - dp; if (o < 0) o = 0; printf "%.0f", 100 * o / (t / 1e9 * n) }')
        OTHER[$s]=$(( ${OTHER[$s]:-0} > other ? ${OTHER[$s]:-0} : other ))
        CDROPS[$s]=$(( ${CDROPS[$s]:-0} + (a1 - a0) - (d1 - d0) ))
        printf '%s\n' "$out" >"$TMP/dnsperf.$s.$round"
        qps=$(awk '/Queries per second:/ { print $4 }' <<<"$out")
        sent=$(awk '/Queries sent:/ { print $3 }' <<<"$out")
        lost=$(awk '/Queries lost:/ { print $3 }' <<<"$out")
        done_=$(awk '/Queries completed:/ { print $3 }' <<<"$out")
        [[ -n $qps && -n $sent && -n $lost ]] || { say "$out"; die "cannot read dnsperf's output for $s"; }
        QPS_LIST[$s]+="$qps "
        SENT[$s]=$(( ${SENT[$s]:-0} + sent ))
        LOST[$s]=$(( ${LOST[$s]:-0} + lost ))
        DONE[$s]=$(( ${DONE[$s]:-0} + done_ ))
        DROPS[$s]=$(( ${DROPS[$s]:-0} + d1 - d0 ))
        TICKS[$s]=$(( ${TICKS[$s]:-0} + c1 - c0 ))
        say "  round $round  $(printf '%-9s' "$s") $(printf '%10.0f' "$qps") q/s  lost $lost of $sent  (other load ${other}%)"
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A QPS=() BEST=()
for s in "${SERVERS[@]}"; do
    QPS[$s]=$(median <<<"${QPS_LIST[$s]}")
    BEST[$s]=$(tr ' ' '\n' <<<"${QPS_LIST[$s]}" | grep -v '^$' | sort -g | tail -1)
done

echo
echo "dnsperf ${DNSPERF_ARGS[*]//$TMP\//} -l $DURATION; $GUESTS names, ${PTR_PERCENT}% PTR; $(nproc) cores; median of $ROUNDS round(s)"
printf '%-9s %9s %9s %13s %6s %6s %8s %6s %9s %6s\n' server "median/s" "best/s" "lost" "srvdrop" "cldrop" "cpu/q µs" "other" "÷dnsmasq" "÷NSD"
for s in "${SERVERS[@]}"; do
    awk -v s="$s" -v q="${QPS[$s]}" -v sent="${SENT[$s]}" -v lost="${LOST[$s]}" -v drops="${DROPS[$s]}" \
        -v cdrops="${CDROPS[$s]}" -v other="${OTHER[$s]}" -v ticks="${TICKS[$s]}" -v hz="$HZ" -v done_="${DONE[$s]}" \
        -v dm="${QPS[dnsmasq]}" -v nsd="${QPS[nsd]}" -v best="${BEST[$s]}" \
        'BEGIN { printf "%-9s %9.0f %9.0f %5d (%5.2f%%) %6d %6d %8.2f %5d%% %8.2fx %5.2fx\n", s, q, best, lost, (sent ? 100 * lost / sent : 0),
                 drops, cdrops, (done_ ? ticks / hz * 1e6 / done_ : 0), other, q / dm, q / nsd }'
done
echo "ratios: of the medians. lost: no answer within dnsperf's timeout; srvdrop/cldrop: UDP receive-buffer drops on the server's"
echo "sockets / elsewhere (dnsperf's); cpu/q: server CPU per answered query; other: highest share of"
echo "the machine's CPU used by neither server nor dnsperf during a measurement (noise from other work)."
max_other=0
for s in "${SERVERS[@]}"; do (( OTHER[$s] > max_other )) && max_other=${OTHER[$s]}; done
(( max_other < 10 )) || say "warning: other processes used up to ${max_other}% of the CPU during the runs; the ratios are unreliable"
(( LOST[leazzard] == 0 )) || say "note: leazzard lost ${LOST[leazzard]} queries"
exit 0

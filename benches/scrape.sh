#!/usr/bin/env bash
# Scrape latency of `ksensor live` under load, with a full host inventory: how long Prometheus
# waits for `/metrics` while the sensor captures a flood and walks its hosts every second.
#
#   sudo benches/scrape.sh [--hosts N] [--pps P] [--seconds S] [KSENSOR...]
#
# For each binary (default target/release/ksensor): two network namespaces joined by a veth
# pair; `ksensor live --workers 1` on one end, `tcpreplay --loop` of a generated capture into
# the other at P packets/s. The capture: N spoofed sources each asking a resolver for a
# Kaspersky update name (every source becomes a host with high-confidence evidence, so the
# inventory fills to its cap), then the same again. A Python client in the sensor's namespace
# scrapes `/metrics` every 50 ms for S seconds (after a warm-up that fills the inventory) and
# prints the scrape latency (median, 99th percentile, max) and the hosts the sensor reports.
# Needs root, ip, tcpreplay and python3. Cleans up its namespaces on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOSTS=70000
PPS=20000
SECONDS_RUN=20
BINS=()
die() { echo "scrape.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --hosts) HOSTS=$2; shift 2 ;;
        --pps) PPS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        -*) die "unknown option $1" ;;
        *) BINS+=("$1"); shift ;;
    esac
done
[ ${#BINS[@]} -gt 0 ] || BINS=("$ROOT/target/release/ksensor")
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for tool in ip tcpreplay python3; do command -v $tool >/dev/null || die "needs $tool"; done
WORK=$(mktemp -d)
NS_S=kscrs$$
NS_L=kscrl$$
cleanup() {
    [ -n "${SENSOR:-}" ] && kill "$SENSOR" 2>/dev/null || true
    [ -n "${REPLAY:-}" ] && kill "$REPLAY" 2>/dev/null || true
    ip netns del $NS_S 2>/dev/null || true
    ip netns del $NS_L 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

python3 - "$WORK/flood.pcap" "$HOSTS" <<'PY'
import struct, sys
path, hosts = sys.argv[1], int(sys.argv[2])
def dns(name, ident):
    q = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"
def csum(b):
    s = sum(struct.unpack(f">{len(b)//2}H", b))
    s = (s >> 16) + (s & 0xFFFF); s += s >> 16
    return ~s & 0xFFFF
payload = dns("s01.upd.kaspersky.com", 7)
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(hosts):
        src = bytes([100, (i >> 16) & 255, (i >> 8) & 255, i & 255])
        dst = bytes([10, 88, 0, 53])
        udp = struct.pack(">HHHH", 40000, 53, 8 + len(payload), 0) + payload
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xFFFF, 0, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack(">H", csum(ip)) + ip[12:]
        frame = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
        f.write(struct.pack("<IIII", i // 1000, (i % 1000) * 1000, len(frame), len(frame)) + frame)
PY

ip netns add $NS_S
ip netns add $NS_L
ip link add scra$$ type veth peer name scrb$$
ip link set scra$$ netns $NS_L
ip link set scrb$$ netns $NS_S
ip -n $NS_L link set scra$$ up
ip -n $NS_S link set scrb$$ up
ip -n $NS_S link set lo up

echo "| binary | hosts reported | scrapes | median ms | p99 ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|"
for bin in "${BINS[@]}"; do
    ip netns exec $NS_S "$bin" live -i scrb$$ --workers 1 --listen 127.0.0.1:19977 \
        --rule-poll-secs 0 > "$WORK/sensor.log" 2>&1 &
    SENSOR=$!
    sleep 1
    ip netns exec $NS_L tcpreplay -q -i scra$$ --loop 0 --pps "$PPS" "$WORK/flood.pcap" \
        > /dev/null 2>&1 &
    REPLAY=$!
    # Warm-up: long enough for HOSTS sources at PPS.
    sleep $(( HOSTS / PPS + 3 ))
    ip netns exec $NS_S python3 - "$SECONDS_RUN" "$bin" <<'PY'
import socket, statistics, sys, time
seconds, name = float(sys.argv[1]), sys.argv[2]
def scrape():
    s = socket.create_connection(("127.0.0.1", 19977), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode("utf-8", "replace")
times, text = [], ""
end = time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    text = scrape()
    times.append((time.monotonic() - start) * 1000)
    time.sleep(0.05)
hosts = 0
for line in text.splitlines():
    if line.startswith("ksensor_hosts{"):
        hosts += int(float(line.rsplit(" ", 1)[1]))
times.sort()
p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
print(f"| {name} | {hosts} | {len(times)} | {statistics.median(times):.1f} | {p99:.1f} | {times[-1]:.1f} |")
PY
    kill "$REPLAY" 2>/dev/null || true; wait "$REPLAY" 2>/dev/null || true; REPLAY=
    kill "$SENSOR" 2>/dev/null || true; wait "$SENSOR" 2>/dev/null || true; SENSOR=
done

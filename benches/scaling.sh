#!/usr/bin/env bash
# Multi-worker scaling of ksensor on a shared or noisy machine: runs `ksensor replay` with 1 and
# with N workers back to back, ROUNDS times, on the same warm capture, and prints per profile
# the fastest wall time of each and the median over rounds of the paired ratio t(1w)/t(Nw).
# A pair runs within a second or two, so slow drifts of the machine (other tenants, frequency)
# hit both members alike; the median discards the rounds a burst of load hit one side only.
#
#   benches/scaling.sh [--rounds R] [--workers N] PROFILE...      (enterprise, dns, handshakes)
#
# Environment: BENCH_DATA (default ./bench-data, as compare.sh), KSENSOR (default
# target/release/ksensor), KSENSOR_ARGS (extra arguments for ksensor replay; default none).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${BENCH_DATA:-$ROOT/bench-data}
KSENSOR=${KSENSOR:-$ROOT/target/release/ksensor}
KSENSOR_ARGS=${KSENSOR_ARGS:-}
ROUNDS=9
WORKERS=$(nproc)
PROFILES=()
die() { echo "scaling.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        -*) die "unknown option $1" ;;
        *) PROFILES+=("$1"); shift ;;
    esac
done
[ ${#PROFILES[@]} -gt 0 ] || die "usage: benches/scaling.sh [--rounds R] [--workers N] PROFILE..."
[ -x "$KSENSOR" ] || die "no ksensor binary at $KSENSOR (cargo build --release)"
for profile in "${PROFILES[@]}"; do
    capture=$DATA/$profile.pcap
    [ -f "$capture" ] || die "no $capture (benches/compare.sh $profile generates it)"
    # The page cache in a known state, as compare.sh's cache_fresh (benches/README.md,
    # "Page-cache state"): dropped, then read back in one sequential pass.
    dd if="$capture" iflag=nocache count=0 status=none
    cat "$capture" > /dev/null
    python3 - "$KSENSOR" "$capture" "$profile" "$ROUNDS" "$WORKERS" $KSENSOR_ARGS <<'PY'
import statistics, subprocess, sys, time
ksensor, capture, profile, rounds, workers, extra = (
    sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6:])
def wall(n):
    cmd = [ksensor, "replay", "--quiet", *extra, "--workers", n, "--report", "/dev/null", capture]
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start
one, many = [], []
for _ in range(rounds):
    one.append(wall("1"))
    many.append(wall(workers))
ratios = [a / b for a, b in zip(one, many)]
print(f"| {profile} | {min(one):.2f} | {min(many):.2f} | {min(one) / min(many):.2f} "
      f"| {statistics.median(ratios):.2f} | {min(ratios):.2f}-{max(ratios):.2f} | {rounds} |")
PY
done

#!/usr/bin/env bash
# Fuzz smoke run: every target of fuzz/ for FUZZ_SECONDS (default 30) on its committed seed
# corpus (fuzz/seeds/<target>, read-only) plus a scratch corpus. Fails on the first crash,
# assertion failure, leak, timeout or out-of-memory; the reproducer is left in
# fuzz/artifacts/<target>/. Total time is about (build + targets x FUZZ_SECONDS / FUZZ_JOBS).
#
# The toolchain here is stable: cargo-fuzz needs nightly-only flags (-Zsanitizer=address,
# sanitizer coverage), which RUSTC_BOOTSTRAP=1 unlocks on a stable compiler. With a nightly
# toolchain installed, `cargo +nightly fuzz …` works as well.
#
# CI wants a verdict that does not depend on luck: a fixed seed and a fixed number of runs
# (FUZZ_SEED, FUZZ_RUNS) make each target's run reproducible; FUZZ_SECONDS caps it in time.
# Long exploratory runs: FUZZ_RUNS=-1 FUZZ_SECONDS=600.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_JOBS (targets run at once, default 2),
# FUZZ_TARGETS (space-separated subset), FUZZ_LOG_DIR (keep each target's libFuzzer log).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-30}"
jobs="${FUZZ_JOBS:-2}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
cargo fuzz build -O
bin="target/x86_64-unknown-linux-gnu/release"
log_dir="${FUZZ_LOG_DIR:-$(mktemp -d)}"
mkdir -p "$log_dir"

run_one() {
    local t="$1"
    mkdir -p "corpus/$t" "artifacts/$t"
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak or unbounded table.
    if "$bin/$t" "corpus/$t" "seeds/$t" \
        -seed="${FUZZ_SEED:-1}" -runs="${FUZZ_RUNS:-30000}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log_dir/$t.log" 2>&1; then
        echo "fuzz $t: ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log_dir/$t.log" | grep -o '[0-9]*$') runs)"
    else
        echo "fuzz $t: FAILED (log $log_dir/$t.log, reproducer in fuzz/artifacts/$t/)"
        tail -n 40 "$log_dir/$t.log"
        return 1
    fi
}

status=0
running=0
for t in $targets; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done
exit "$status"

#!/usr/bin/env bash
# Fuzzes every target for SECS seconds each (default 600), JOBS at a time (default 2), then
# minimises each corpus. Logs go to fuzz/logs/<target>.log; the last line of each says how
# many inputs ran. Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Usage: fuzz/run-all.sh [SECS] [JOBS] [TARGET...]
# Builds with overflow checks and debug assertions (-a) and without AddressSanitizer
# (SANITIZER=none unless set): devp2p-core forbids unsafe code, so ASan checks only the
# dependencies' unsafe code, while its allocator and memcmp interceptors were ~40% of the
# table target's profile. Without it libFuzzer gets no hints from memcmp (the targets build
# valid hashes and MACs themselves). SANITIZER=address fuzz/run-all.sh ... brings it back.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
jobs=${2:-2}
shift $(( $# > 2 ? 2 : $# )) || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^devp2p-fuzz$')
fi
flags=(--features libfuzzer -O -a -s "${SANITIZER:-none}")
mkdir -p fuzz/logs
for t in "${targets[@]}"; do cargo +nightly fuzz build "${flags[@]}" "$t" >/dev/null; done
run() {
  local t=$1
  cargo +nightly fuzz run "${flags[@]}" "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 >"fuzz/logs/$t.log" 2>&1 || echo "FAILED $t (see fuzz/logs/$t.log)"
  cargo +nightly fuzz cmin "${flags[@]}" "$t" >"fuzz/logs/$t.cmin.log" 2>&1 || true
  echo "$t: $(grep -E '^Done [0-9]+ runs' "fuzz/logs/$t.log" || echo 'no summary')"
}
running=0
for t in "${targets[@]}"; do
  run "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

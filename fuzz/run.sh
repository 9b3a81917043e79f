#!/usr/bin/env bash
# weir's fuzz targets (cargo-fuzz + libFuzzer), one after the other, each for a time budget.
#
#   fuzz/run.sh                    # every target for 30 s (scripts/test.sh: FUZZ_PROFILE=dev)
#   fuzz/run.sh 600                # every target for 10 minutes (one core each, in turn)
#   fuzz/run.sh 600 translate      # one target
#   fuzz/run.sh --minimize         # shrink the committed corpora (cargo fuzz cmin, edges only)
#
# Seeds: fuzz/corpus/<target>/ (committed: the hand-written seeds and the edge-minimized
# corpus of a 10-CPU-minute run per target, 3,380 files, 580 KB). What a run discovers goes
# to a scratch corpus under fuzz/target/, never into the repository. A crash fails the run,
# and its input is kept in fuzz/artifacts/<target>/ to reproduce with
# `cargo +nightly fuzz run <target> FILE`.
# Needs the nightly toolchain (the machine image has it) and cargo-fuzz (installed here when
# missing, pinned).
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.2
TARGETS=(config_table translate cookie upstream_response forwarded_headers)

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz/run.sh: no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly" >&2
  exit 2
fi

# Debug assertions on (overflow checks), optimized, no sanitizer: weir has no unsafe code,
# so what the fuzzers hunt is panics, overflows, hangs and broken properties, and without
# ASan each target runs several times faster.
fuzz=(cargo +nightly fuzz)
build_flags=(--release --debug-assertions --sanitizer none)
# FUZZ_PROFILE=dev: unoptimized (debug assertions all the same). About 40 times fewer inputs
# a second, but it builds in half the time (6.5 against 12 minutes, cold, on two cores), and
# a run still replays the whole committed corpus first: scripts/test.sh's 30-second smoke
# uses it; long runs should not.
if [[ ${FUZZ_PROFILE:-release} == dev ]]; then
  build_flags=(--dev --sanitizer none)
fi

if [[ ${1:-} == --minimize ]]; then
  for t in "${TARGETS[@]}"; do
    # Edges only (-use_counters=0): an input is kept for a new edge, not for a new hit count
    # of one, which keeps the corpora a quarter of the size.
    "${fuzz[@]}" cmin "${build_flags[@]}" "$t" "corpus/$t" -- -use_counters=0
  done
  exit 0
fi

seconds=${1:-30}
# A fixed seed (FUZZ_SEED, default 1): a run's inputs follow from the seed and the corpus,
# so a crash CI finds is found again by the same command; FUZZ_SEED=0 lets libFuzzer pick.
seed=${FUZZ_SEED:-1}
shift || true
(($#)) && TARGETS=("$@")

"${fuzz[@]}" build "${build_flags[@]}" >/dev/null
failed=0
for t in "${TARGETS[@]}"; do
  scratch=target/scratch-corpus/$t
  mkdir -p "$scratch" "corpus/$t" "artifacts/$t"
  log=target/fuzz-$t.log
  start=$(date +%s)
  if "${fuzz[@]}" run "${build_flags[@]}" "$t" "$scratch" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -seed="$seed" -print_final_stats=1 >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed=$((failed + 1))
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  echo "fuzz $t: $status, ${runs} inputs in $(($(date +%s) - start)) s"
  if [[ $status == FAILED ]]; then
    tail -40 "$log"
  fi
done
passed=$((${#TARGETS[@]} - failed))
echo "fuzz: $passed passed, $failed failed"
((failed == 0))

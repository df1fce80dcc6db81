#!/usr/bin/env bash
# Builds the libFuzzer targets under tests/fuzz/ with clang + ASan + UBSan
# (--config=fuzz) and runs each for N seconds, on a temporary copy of its
# seed corpus (the committed corpora never grow). Prints one line per
# target:
#
#   fuzz NAME: RUNS runs, CRASHES crashes
#
# and, on stderr, where a crashing input and the fuzzer's log were kept.
# Exits non-zero if the build fails or any target crashes. docs/fuzzing.md
# explains the config and how to turn a crash into a regression test.
#
# Switching the compiler re-configures Bazel's C++ toolchain, so the fuzz
# build uses its own output base (one per checkout, under
# ${XDG_CACHE_HOME:-$HOME/.cache}/bevrpc-fuzz/) and never touches the
# default build's cache.
#
# Usage: bash tools/fuzz.sh [--seconds N] [TARGET_NAME...]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=60
names=()
while (($#)); do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "fuzz.sh: --seconds must be a positive integer, got '$seconds'" >&2
  exit 2
fi

bash tools/setup.sh || exit 1

checkout_id=$(pwd -P | md5sum | cut -c1-12)
output_base="${XDG_CACHE_HOME:-$HOME/.cache}/bevrpc-fuzz/${checkout_id}"
mkdir -p "$output_base"
# The fuzz build's server exits after 5 idle minutes rather than lingering.
bazel_fuzz=(bazel --output_base="$output_base" --max_idle_secs=300)

# Every target has a corpus directory named after it (tests/fuzz/fuzz.bzl).
if ((${#names[@]} == 0)); then
  for dir in tests/fuzz/corpus/*/; do names+=("$(basename "$dir")"); done
fi
if ((${#names[@]} == 0)); then
  echo "fuzz.sh: no targets under tests/fuzz/corpus/" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bevrpc-fuzz.XXXXXX")
build_log="$work/build.log"
targets=("${names[@]/#///tests/fuzz:}")
echo "== bazel build --config=fuzz ${targets[*]}" >&2
if ! "${bazel_fuzz[@]}" build --config=fuzz "${targets[@]}" >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  echo "fuzz.sh: build failed (log: $build_log)" >&2
  exit 1
fi
bin_dir=$("${bazel_fuzz[@]}" info --config=fuzz bazel-bin 2>/dev/null)

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

rc=0
keep=0
for name in "${names[@]}"; do
  corpus="$work/$name/corpus"
  artifacts="$work/$name/artifacts"
  log="$work/$name/fuzz.log"
  mkdir -p "$corpus" "$artifacts"
  cp -R "tests/fuzz/corpus/$name/." "$corpus/"
  # -timeout: the targets' own bounded waits are 10 s; anything slower is a
  # hang libFuzzer reports (and keeps) as a crash.
  "$bin_dir/tests/fuzz/$name" "$corpus" \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=60 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1
  status=$?
  runs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" |
         grep -oE '[0-9]+$' | tail -n 1)
  if [ -z "$runs" ]; then  # Crashed before the final stats: last status line.
    runs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
  fi
  crashes=$(find "$artifacts" -type f | wc -l)
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1  # Died without an artifact (e.g. the build's binary is broken).
  fi
  echo "fuzz $name: ${runs:-0} runs, $crashes crashes"
  if [ "$crashes" -ne 0 ]; then
    rc=1
    keep=1
    echo "  crashing input(s) kept in $artifacts/, log in $log" >&2
  fi
done

if [ "$keep" -eq 0 ]; then rm -rf "$work"; fi
exit "$rc"

#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang 14, ASan+UBSan, build/fuzz) and runs them
# (docs/fuzzing.md says what each one checks).
#
# Usage: scripts/fuzz.sh [--smoke | --minutes N] [--merge] [--jobs N] [--only T1,T2] [--help]
#   --smoke      every target on its seed corpus (fuzz/corpus/<target>), then mutating from it,
#                for a bounded time: 71 s of fuzzing for all six together. Exits non-zero on the first
#                crash, leak, timeout or failed check. CI runs this (.ci/run).
#   --minutes N  the campaign (default, N = 10): each target for N minutes, one after the other.
#                New inputs go to a scratch corpus outside the repository
#                ($SB_FUZZ_WORK, default /tmp/switchboard-fuzz/<target>); crashes to
#                $SB_FUZZ_WORK/crashes/<target>-crash-*.
#   --merge      after the campaign, merge the inputs that add coverage into fuzz/corpus/<target>
#                (libFuzzer -merge=1: only inputs with new coverage are copied).
#   --jobs N     parallel build jobs (default 2).
#   --only LIST  only these targets (comma separated names, e.g. fuzz_codec,fuzz_tpkt).
#
# A crash is saved with the input that caused it; reproduce it with
#   build/fuzz/fuzz/<target> <crash file>
# and, once fixed, keep the input in fuzz/corpus/<target>/regress-<what> with a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=campaign
minutes=10
merge=0
jobs=2
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) mode=smoke ;;
    --minutes) minutes="$2"; shift ;;
    --merge) merge=1 ;;
    --jobs) jobs="$2"; shift ;;
    --only) only="$2"; shift ;;
    --help | -h) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$minutes" in '' | *[!0-9]*) echo "fuzz.sh: --minutes takes a whole number" >&2; exit 2 ;; esac

# Per target: -max_len (bytes) and seconds in the smoke run. The document target runs poppler,
# libpng and libtiff: its inputs are kept short and its executions are the slowest.
targets=(fuzz_codec fuzz_tls_records fuzz_tpkt fuzz_relay_config fuzz_agent_config fuzz_document)
declare -A max_len=([fuzz_codec]=4096 [fuzz_tls_records]=4096 [fuzz_tpkt]=4096
                    [fuzz_relay_config]=2048 [fuzz_agent_config]=2048 [fuzz_document]=8192)
declare -A smoke_s=([fuzz_codec]=8 [fuzz_tls_records]=15 [fuzz_tpkt]=8
                    [fuzz_relay_config]=10 [fuzz_agent_config]=10 [fuzz_document]=20)
declare -A dict=([fuzz_relay_config]=fuzz/dict/toml.dict [fuzz_agent_config]=fuzz/dict/toml.dict)
if [ -n "$only" ]; then
  IFS=, read -r -a targets <<<"$only"
  for t in "${targets[@]}"; do
    [ -n "${max_len[$t]:-}" ] || { echo "fuzz.sh: unknown target $t" >&2; exit 2; }
  done
fi

# clang 14 and its libFuzzer runtime (Debian: clang, libclang-rt-14-dev).
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
need=()
command -v clang++ >/dev/null || need+=(clang)
if ! ls /usr/lib/llvm-14/lib/clang/14*/lib/linux 2>/dev/null | grep -q fuzzer; then
  need+=(libclang-rt-14-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "fuzz.sh: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

echo "== fuzz build (preset fuzz, build/fuzz)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"

work="${SB_FUZZ_WORK:-/tmp/switchboard-fuzz}"
mkdir -p "$work/crashes"
# Leaks are errors; a check failure aborts; an execution over 10 s or 2 GiB is a failure too.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

run() {  # target seconds corpus-dirs...
  local t="$1" seconds="$2"
  shift 2
  local args=(-max_len="${max_len[$t]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix="$work/crashes/$t-")
  [ -n "${dict[$t]:-}" ] && args+=(-dict="${dict[$t]}")
  local log="$work/$t.log"
  local start=$SECONDS
  # The outer timeout catches a hang libFuzzer's own -timeout cannot (one stuck in a syscall).
  if ! timeout $((seconds + 60)) "build/fuzz/fuzz/$t" "${args[@]}" "$@" >"$log" 2>&1; then
    echo "== $t FAILED after $((SECONDS - start)) s; the end of $log:"
    tail -n 40 "$log"
    echo "== crash inputs: $(ls "$work/crashes/$t-"* 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  echo "== $t: $(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')" \
    "executions in $((SECONDS - start)) s, corpus $(grep -Eo 'corp: [0-9]+/[0-9a-zA-Z]+' "$log" |
    tail -n 1 | cut -d' ' -f2)"
}

status=0
start_all=$SECONDS
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$t"
  if [ "$mode" = smoke ]; then
    # Seeds are read, never written: new inputs go to a throw-away directory.
    scratch="$work/smoke/$t"
    rm -rf "$scratch"
    mkdir -p "$scratch"
    run "$t" "${smoke_s[$t]}" "$scratch" "$seeds" || { status=1; break; }
  else
    scratch="$work/$t"
    mkdir -p "$scratch"
    if run "$t" $((minutes * 60)) "$scratch" "$seeds"; then
      if [ "$merge" = 1 ]; then
        before=$(ls "$seeds" | wc -l)
        "build/fuzz/fuzz/$t" -merge=1 -max_len="${max_len[$t]}" "$seeds" "$scratch" \
          >"$work/$t.merge.log" 2>&1
        echo "== $t: merged $(($(ls "$seeds" | wc -l) - before)) inputs into $seeds"
      fi
    else
      status=1  # go on with the other targets; the crash stays in $work/crashes
    fi
  fi
done
echo "== fuzzing took $((SECONDS - start_all)) s (status $status)"
exit $status

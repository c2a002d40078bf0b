#!/usr/bin/env sh
# W4: `budgit plan` between two commits of a 5,000-file policy repository with 1% of
# the files changed, 100k users, against two baselines in the same run:
#   - the gate's own: evaluating both commits from scratch, as two separate
#     `budgit evaluate --ref` processes (same directory, same --now; CPU summed);
#   - a stricter one: the same plan with the base validated and resolved from scratch
#     (`--from-scratch`), one process sharing the directory read between the sides.
# Prints user CPU seconds (the 1-thread figure, steadier than wall time on a shared
# machine) and the median ratio of 5 runs for each.
#
# Usage: bench/w4.sh [WORKDIR]   (builds the release binary first, into $CARGO_TARGET_DIR
# when set, so a measurement need not share the work tree's target directory)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-${TMPDIR:-/tmp}/budgit-w4}
now=2026-11-27T12:00:00Z
cargo build --release -p budgit --manifest-path "$here/Cargo.toml" >&2
budgit="${CARGO_TARGET_DIR:-$here/target}/release/budgit"

if [ ! -d "$work/org/.git" ]; then
    rm -rf "$work" && mkdir -p "$work"
    "$budgit" gen --users 100000 --groups 200 --overrides 4800 --days 1 --seed 1 --now "$now" --out "$work/org" >&2
    cd "$work/org"
    git init -q -b main && git add policies
    git -c user.name=bench -c user.email=bench@example.com commit -qm base
    # 1% of the files: 5 groups get 100 more credits, 45 overrides one credit less (one
    # more when at one). Lowering keeps the overrides under the generated guardrail (an
    # override adds at most four times the default), so the head validates cleanly.
    python3 - <<'EOF'
import glob, re
def bump(files, by):
    for f in files:
        s = open(f).read()
        m = re.search(r'credits: ([0-9.]+)', s)
        v = float(m.group(1))
        s = s[:m.start(1)] + ('%g' % by(v)) + s[m.end(1):]
        open(f, 'w').write(s)
bump(sorted(glob.glob('policies/overrides/*.yaml'))[:45], lambda v: v - 1 if v > 1 else v + 1)
bump(sorted(glob.glob('policies/groups/*.yaml'))[:5], lambda v: v + 100)
EOF
    git add policies && git -c user.name=bench -c user.email=bench@example.com commit -qm head
fi
cd "$work/org"

# `time` runs a program, not a shell function: the command is spelled out. The exit
# status is not checked (a head with findings exits 1; the commands still run in full).
cpu() { /usr/bin/time -f "%U" "$@" 2>&1 >/dev/null | tail -1; }
inc=""; full=""; two=""
for _ in 1 2 3 4 5; do
    inc="$inc $(cpu "$budgit" plan --base HEAD~1 --head HEAD --directory directory.csv --now "$now" --format json)"
    full="$full $(cpu "$budgit" plan --base HEAD~1 --head HEAD --directory directory.csv --now "$now" --format json --from-scratch)"
    b=$(cpu "$budgit" evaluate --ref HEAD~1 --directory directory.csv --now "$now" --format json)
    h=$(cpu "$budgit" evaluate --ref HEAD --directory directory.csv --now "$now" --format json)
    two="$two $(echo "$b $h" | awk '{printf "%.2f", $1 + $2}')"
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | sed -n 3p; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1/$2}'; }
i=$(median $inc); f=$(median $full); t=$(median $two)
echo "incremental plan:$inc"
echo "plan --from-scratch:$full"
echo "evaluate HEAD~1 + evaluate HEAD (summed):$two"
echo "W4 budgit plan ${i} s / evaluate both commits from scratch (2 processes) ${t} s = $(ratio "$i" "$t")x (gate baseline; user CPU, median of 5)"
echo "W4 budgit plan ${i} s / plan --from-scratch (1 process) ${f} s = $(ratio "$i" "$f")x (stricter; user CPU, median of 5)"

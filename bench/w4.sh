#!/usr/bin/env sh
# W4: `budgit plan` between two commits of a 5,000-file policy repository with 1% of
# the files changed, 100k users: the incremental plan (base derived from the head)
# against the same plan with the base validated and resolved from scratch
# (`--from-scratch`), in the same run. Prints user CPU seconds (the 1-thread figure,
# steadier than wall time on a shared machine) and the median ratio of 5 runs.
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
    # 1% of the files: 45 overrides and 5 groups get 100 more credits.
    python3 - <<'EOF'
import glob, re
files = sorted(glob.glob('policies/overrides/*.yaml'))[:45] + sorted(glob.glob('policies/groups/*.yaml'))[:5]
for f in files:
    s = open(f).read()
    m = re.search(r'credits: ([0-9.]+)', s)
    s = s[:m.start(1)] + ('%g' % (float(m.group(1)) + 100)) + s[m.end(1):]
    open(f, 'w').write(s)
EOF
    git add policies && git -c user.name=bench -c user.email=bench@example.com commit -qm head
fi
cd "$work/org"

# `time` runs a program, not a shell function: the command is spelled out. The head has
# validation findings (exit status 1), so the exit status is not checked.
cpu() { /usr/bin/time -f "%U" "$@" 2>&1 >/dev/null | tail -1; }
inc=""; full=""
for _ in 1 2 3 4 5; do
    inc="$inc $(cpu "$budgit" plan --base HEAD~1 --head HEAD --directory directory.csv --now "$now" --format json)"
    full="$full $(cpu "$budgit" plan --base HEAD~1 --head HEAD --directory directory.csv --now "$now" --format json --from-scratch)"
done
median() { echo "$@" | tr ' ' '\n' | grep . | sort -g | sed -n 3p; }
i=$(median $inc); f=$(median $full)
echo "incremental:$inc"
echo "from scratch:$full"
echo "W4 budgit plan ${i} s / from scratch ${f} s = $(echo "$i $f" | awk '{printf "%.2f", $1/$2}')x (user CPU, median of 5)"

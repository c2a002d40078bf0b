#!/usr/bin/env sh
# W5: `budgit reconcile --target claude-enterprise` of 100,000 members against the fake
# Claude Enterprise Admin API (`budgit-fake claude`) on loopback, with `--max-rps` set.
#
# The people are `budgit gen`'s directory; the policies are written here (a default
# and one group per department, no pools or caps: what the target can express). Two
# runs: the first writes every member's limit, the second has nothing to change.
# Prints, per run: vendor calls made (and how many wrote), wall time, calls per
# second, and the first run's ratio to the floor that the rate sets (writes ÷ rate).
#
# Usage: bench/w5.sh [RPS] [USERS] [WORKDIR]   (defaults 500, 100000, /tmp/budgit-w5;
# builds the release binaries first, into $CARGO_TARGET_DIR when set; PROFILE=debug
# uses the debug build instead, when a release build is out of reach)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
rps=${1:-500}
users=${2:-100000}
work=${3:-${TMPDIR:-/tmp}/budgit-w5}
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release -p budgit -p budgit-fakes --manifest-path "$here/Cargo.toml" >&2
else
    cargo build -p budgit -p budgit-fakes --manifest-path "$here/Cargo.toml" >&2
fi
bin="${CARGO_TARGET_DIR:-$here/target}/$profile"

rm -rf "$work" && mkdir -p "$work"
"$bin/budgit" gen --users "$users" --groups 1 --overrides 0 --days 1 --seed 1 --out "$work/gen" >&2
mkdir -p "$work/org/policies"
cp "$work/gen/directory.csv" "$work/org/directory.csv"
cat >"$work/org/policies/workspace.yaml" <<'EOF'
apiVersion: budgit/v1
kind: Workspace
name: acme
period: month
default:
  credits: 2000
attributes:
  department: string
  cost_center: string
  title: string
  location: string
  idp_groups: list
vendors:
  claude-enterprise:
    currency: usd
    credit: "0.01"
EOF
i=0
for dept in Engineering Research Sales Support Finance; do
    i=$((i + 1))
    cat >"$work/org/policies/$(echo "$dept" | tr 'A-Z' 'a-z').yaml" <<EOF
apiVersion: budgit/v1
kind: Group
name: $(echo "$dept" | tr 'A-Z' 'a-z')
selector: 'user.department == "$dept"'
priority: $((i * 10))
limit:
  credits: $((2000 + i * 500))
EOF
done
cd "$work/org"
git init -q -b main && git add policies
git -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false commit -qm policies

# The fake on a free loopback port; its address is on its first stderr line.
"$bin/budgit-fake" claude --listen 127.0.0.1:0 2>"$work/fake.log" &
fake=$!
trap 'kill $fake 2>/dev/null' EXIT
while ! grep -q listening "$work/fake.log"; do sleep 0.1; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/fake.log" | head -1)

# Every directory person a member, 10,000 a request (the fake's JSON body limit is 2 MiB).
python3 - "$url" "$work/org/directory.csv" <<'EOF'
import csv, json, sys, urllib.request
url, path = sys.argv[1], sys.argv[2]
emails = [row["email"] for row in csv.DictReader(open(path))]
for i in range(0, len(emails), 10000):
    body = json.dumps([{"email": e} for e in emails[i:i + 10000]]).encode()
    req = urllib.request.Request(url + "/_fake/members", body, {"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=60).read()
print(f"{len(emails)} members at {url}", file=sys.stderr)
EOF

run() {
    start=$(date +%s.%N)
    ANTHROPIC_API_KEY=sk-ant-admin-bench "$bin/budgit" reconcile --target claude-enterprise \
        --workspace "$url" --ref main --directory directory.csv --max-rps "$rps" \
        --allow-mass-change --format json >"$work/$1.json" || true
    end=$(date +%s.%N)
    echo "$start $end"
}
summary() {
    python3 - "$1" "$2" "$3" "$4" "$rps" <<'EOF'
import json, sys
name, start, end, path, rps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
r = json.load(open(path))
calls, wall = r["calls_made"], end - start
writes = len(r.get("applied", [])) if isinstance(r.get("applied"), list) else r.get("applied", 0)
line = f"W5 {name}: {calls} calls ({writes} writes) in {wall:.1f} s = {calls / wall:.0f} calls/s at --max-rps {rps:g}"
if name == "first run":
    line += f"; {wall:.1f} s / ({calls} calls / {rps:g} per s = {calls / rps:.1f} s) = {wall / (calls / rps):.3f}x"
print(line)
EOF
}
set -- $(run first)
summary "first run" "$1" "$2" "$work/first.json"
set -- $(run second)
summary "no-change run" "$1" "$2" "$work/second.json"
python3 - "$url" <<'EOF'
import collections, json, sys, urllib.request
calls = json.load(urllib.request.urlopen(sys.argv[1] + "/_fake/calls", timeout=60))
print("W5 calls the fake saw over both runs:", dict(collections.Counter(c["method"] for c in calls)))
EOF

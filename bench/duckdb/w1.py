"""W1 peer: the status sweep as SQL in DuckDB over the same usage CSV.

Sums each user's credits over the period, joins the limits budgit resolved
(limits.csv: user,credits), and classifies every user with CASE (exceeded at
100%, warning at the highest alert threshold below 100). Prints one JSON object:
median seconds end to end (reading the CSV inside the query) and in memory
(tables loaded first), and the status counts, for the given thread count.
"""

import argparse
import json
import statistics
import time

import duckdb

QUERY = """
WITH used AS (
    SELECT "user", sum(credits) AS used
    FROM {usage}
    WHERE "date" >= DATE '{start}' AND "date" < DATE '{end}'
    GROUP BY "user"
),
status AS (
    SELECT l."user",
           CASE WHEN coalesce(u.used, 0) >= l.credits THEN 'exceeded'
                WHEN coalesce(u.used, 0) * 100 >= l.credits * {warn} THEN 'warning'
                ELSE 'ok' END AS status
    FROM {limits} l LEFT JOIN used u ON u."user" = l."user"
)
SELECT status, count(*) FROM status GROUP BY status ORDER BY status
"""

USAGE_CSV = ("read_csv('{path}', header = true, columns = {{'date': 'DATE', 'user': 'VARCHAR', "
             "'product': 'VARCHAR', 'model': 'VARCHAR', 'credits': 'DECIMAL(18,6)'}})")
LIMITS_CSV = ("read_csv('{path}', header = true, columns = {{'user': 'VARCHAR', "
              "'credits': 'DECIMAL(18,6)'}})")


def timed(con, sql, runs):
    con.execute(sql).fetchall()  # warm-up
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = con.execute(sql).fetchall()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--usage", required=True)
    ap.add_argument("--limits", required=True)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    ap.add_argument("--warn", type=int, default=80)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()

    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    usage = USAGE_CSV.format(path=a.usage)
    limits = LIMITS_CSV.format(path=a.limits)
    e2e, counts = timed(con, QUERY.format(usage=usage, limits=limits, start=a.start, end=a.end, warn=a.warn),
                        a.runs)
    con.execute(f"CREATE TABLE usage AS SELECT * FROM {usage}")
    con.execute(f"CREATE TABLE limits AS SELECT * FROM {limits}")
    mem, counts_mem = timed(con, QUERY.format(usage="usage", limits="limits", start=a.start, end=a.end,
                                              warn=a.warn), a.runs)
    assert counts == counts_mem
    print(json.dumps({"threads": a.threads, "end_to_end": e2e, "in_memory": mem,
                      "status": {k: v for k, v in counts}}))


if __name__ == "__main__":
    main()

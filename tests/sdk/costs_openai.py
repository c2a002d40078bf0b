"""Pages through budgit's Costs API with the official `openai` SDK and prints the totals.

Usage: costs_openai.py BASE_URL ADMIN_TOKEN START_TIME END_TIME PAGE_SIZE

The client validates every response against the SDK's own models (strict
validation), so a field of the wrong type or a missing one fails the run. Prints
one JSON object: pages read, buckets, results, and credits by user and by line item.
"""

import json
import sys

import openai
from openai.types.admin.organization.usage_costs_response import (
    DataResultOrganizationCostsResult,
    UsageCostsResponse,
)


def main() -> int:
    base_url, token, start, end, size = sys.argv[1:6]
    client = openai.OpenAI(
        base_url=base_url,
        api_key="unused",
        admin_api_key=token,
        max_retries=0,
        timeout=30,
        _strict_response_validation=True,
    )
    by_user: dict[str, float] = {}
    by_line_item: dict[str, float] = {}
    pages = buckets = results = 0
    page = openai.omit
    # bounded: a server that never stops paging fails the run instead of hanging it
    for _ in range(1000):
        resp = client.admin.organization.usage.costs(
            start_time=int(start),
            end_time=int(end),
            bucket_width="1d",
            group_by=["user_id", "line_item"],
            limit=int(size),
            page=page,
        )
        assert isinstance(resp, UsageCostsResponse), type(resp)
        assert resp.object == "page"
        pages += 1
        for bucket in resp.data:
            assert bucket.object == "bucket" and bucket.end_time - bucket.start_time == 86400
            buckets += 1
            for r in bucket.results:
                assert isinstance(r, DataResultOrganizationCostsResult), type(r)
                assert r.amount is not None and r.amount.currency == "credits", r
                assert r.user_id is not None and r.line_item is not None, r
                results += 1
                by_user[r.user_id] = round(by_user.get(r.user_id, 0.0) + r.amount.value, 6)
                by_line_item[r.line_item] = round(by_line_item.get(r.line_item, 0.0) + r.amount.value, 6)
        if not resp.has_more:
            break
        assert resp.next_page, "has_more without next_page"
        page = resp.next_page
    else:
        raise SystemExit("the costs pages did not end after 1000 pages")
    print(
        json.dumps(
            {
                "openai": openai.__version__,
                "pages": pages,
                "buckets": buckets,
                "results": results,
                "by_user": by_user,
                "by_line_item": by_line_item,
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drives the OpenAI fake with the official `openai` SDK and prints what it read.

Usage: openai_fake.py BASE_URL ADMIN_KEY START_TIME END_TIME

Every call goes through the SDK's own resources with strict response validation,
so an answer of the wrong shape fails the run. Covers the Costs API (all cursor
pages), users and projects (auto-pagination), the organization and project spend
limits and spend alerts, the error shape (401, 404, 400) and the scripted faults
(429 with Retry-After, 500). Prints one JSON object.
"""

import json
import sys
import urllib.request

import openai
from openai.types.admin.organization.usage_costs_response import (
    DataResultOrganizationCostsResult,
    UsageCostsResponse,
)


def fault(base_url: str, faults: list) -> None:
    root = base_url.rsplit("/v1", 1)[0]
    req = urllib.request.Request(
        root + "/_fake/faults",
        data=json.dumps(faults).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204, resp.status


def expect(error_type, call) -> str:
    try:
        call()
    except error_type as e:
        return f"{e.status_code} {e.body['message'] if isinstance(e.body, dict) else e.body}"
    raise AssertionError(f"expected {error_type.__name__}")


def main() -> int:
    base_url, key, start, end = sys.argv[1:5]
    client = openai.OpenAI(
        base_url=base_url,
        api_key="unused",
        admin_api_key=key,
        max_retries=0,
        timeout=30,
        _strict_response_validation=True,
    )
    org = client.admin.organization
    out: dict = {"openai": openai.__version__}

    # Costs: every page, grouped the way `budgit usage pull` asks
    by_user: dict[str, int] = {}
    pages = buckets = 0
    page = openai.omit
    for _ in range(1000):
        resp = org.usage.costs(
            start_time=int(start),
            end_time=int(end),
            bucket_width="1d",
            group_by=["user_id", "line_item", "project_id"],
            limit=7,
            page=page,
        )
        assert isinstance(resp, UsageCostsResponse), type(resp)
        pages += 1
        for bucket in resp.data:
            assert bucket.object == "bucket" and bucket.end_time - bucket.start_time == 86400
            buckets += 1
            for r in bucket.results:
                assert isinstance(r, DataResultOrganizationCostsResult), type(r)
                assert r.amount is not None and r.amount.currency == "usd", r
                assert r.line_item and r.project_id, r
                # micro-dollars as integers: exact for the fake's amounts
                by_user[r.user_id or ""] = by_user.get(r.user_id or "", 0) + round(r.amount.value * 1_000_000)
        if not resp.has_more:
            break
        page = resp.next_page
    else:
        raise SystemExit("the costs pages did not end after 1000 pages")
    out.update(costs_pages=pages, buckets=buckets, micro_usd_by_user=by_user)

    # Users and projects: the SDK follows `last_id` with `after`
    out["users"] = [(u.id, u.email) for u in org.users.list(limit=2)]
    out["projects"] = [(p.id, p.name, p.object) for p in org.projects.list(limit=1)]

    # The organization's spend limit
    out["no_org_limit"] = expect(openai.NotFoundError, org.spend_limit.retrieve)
    limit = org.spend_limit.update(currency="USD", interval="month", threshold_amount=500_000)
    assert limit.object == "organization.spend_limit" and limit.threshold_amount == 500_000
    again = org.spend_limit.retrieve()
    out["org_limit"] = [again.threshold_amount, again.enforcement.status, again.interval]
    out["org_limit_deleted"] = org.spend_limit.delete().deleted

    # Organization spend alerts
    channel = {"type": "email", "recipients": ["finance@acme.com"]}
    a1 = org.spend_alerts.create(currency="USD", interval="month", threshold_amount=100_000, notification_channel=channel)
    a2 = org.spend_alerts.create(currency="USD", interval="month", threshold_amount=400_000, notification_channel=channel)
    org.spend_alerts.update(a2.id, currency="USD", interval="month", threshold_amount=450_000, notification_channel=channel)
    assert org.spend_alerts.retrieve(a1.id).threshold_amount == 100_000
    out["org_alerts"] = [a.threshold_amount for a in org.spend_alerts.list(limit=1)]
    out["org_alert_deleted"] = org.spend_alerts.delete(a1.id).object

    # A project's spend limit and alerts
    projects = org.projects
    pl = projects.spend_limit.update("proj_app", currency="USD", interval="month", threshold_amount=1_000)
    out["project_limit"] = [pl.object, pl.threshold_amount, pl.enforcement.status]
    assert projects.spend_limit.retrieve("proj_app").threshold_amount == 1_000
    pa = projects.spend_alerts.create(
        "proj_app", currency="USD", interval="month", threshold_amount=800, notification_channel=channel
    )
    assert projects.spend_alerts.retrieve(pa.id, project_id="proj_app").object == "project.spend_alert"
    projects.spend_alerts.update(
        pa.id, project_id="proj_app", currency="USD", interval="month", threshold_amount=900, notification_channel=channel
    )
    out["project_alerts"] = [a.threshold_amount for a in projects.spend_alerts.list("proj_app")]
    out["project_alert_deleted"] = projects.spend_alerts.delete(pa.id, project_id="proj_app").deleted
    out["project_limit_deleted"] = projects.spend_limit.delete("proj_app").object
    out["unknown_project"] = expect(openai.NotFoundError, lambda: projects.spend_limit.retrieve("proj_nope"))

    # Errors and faults, in the SDK's own exception types
    out["bad_request"] = expect(
        openai.BadRequestError, lambda: org.usage.costs(start_time=int(start), bucket_width="1h")
    )
    bad_key = openai.OpenAI(base_url=base_url, api_key="unused", admin_api_key="sk-wrong", max_retries=0)
    out["bad_key"] = expect(openai.AuthenticationError, lambda: bad_key.admin.organization.users.list())
    fault(base_url, [{"kind": "too_many", "retry_after": 0}])
    out["rate_limited"] = expect(openai.RateLimitError, lambda: org.users.list())
    fault(base_url, [{"kind": "server_error"}])
    out["server_error"] = expect(openai.InternalServerError, lambda: org.users.list())
    # with retries the SDK honours Retry-After and gets through
    retrying = client.with_options(max_retries=2)
    fault(base_url, [{"kind": "too_many", "retry_after": 0}, {"kind": "server_error"}])
    out["after_retries"] = len(list(retrying.admin.organization.users.list()))

    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fake Claude Enterprise Admin API read and written by the official `anthropic` SDK.

Run by `cli/tests/claude_sdk.rs`: `python claude_admin.py BASE_URL KEY`. Every answer
is parsed by the SDK's own generated models with strict response validation, so a
field of the wrong type, a missing field or a wrong page shape fails the script.
Prints one JSON line of what it saw.
"""

import json
import sys

import anthropic


def main() -> None:
    base, key = sys.argv[1], sys.argv[2]
    client = anthropic.Anthropic(
        api_key=key, base_url=base, max_retries=0, _strict_response_validation=True
    )
    org = client.beta.organization

    # users: `SyncPage` (first_id / last_id / has_more), two per page
    users = org.users.list(limit=2)
    members = []
    user_pages = 0
    page = users
    while True:
        user_pages += 1
        members.extend(page.data)
        if not page.has_next_page():
            break
        page = page.get_next_page()
    ids = {u.email: u.id for u in members}
    assert all(u.type == "user" for u in members)

    # upsert a user-scope limit, then again: the same limit, a new amount
    first = org.spend_limits.set(
        amount="500", scope={"type": "user", "user_id": ids["alice@acme.com"]}, period="monthly"
    )
    again = org.spend_limits.set(
        amount="750", scope={"type": "user", "user_id": ids["alice@acme.com"]}, period="monthly"
    )
    assert first.id == again.id and again.amount == "750", (first, again)
    bob = org.spend_limits.set(
        amount="100", scope={"type": "user", "user_id": ids["bob@acme.com"]}, period="weekly"
    )
    assert org.spend_limits.retrieve(bob.id).period == "weekly"

    # list: `SyncPageCursor` (next_page), needs the reads beta the SDK sends
    listed = [l.id for l in org.spend_limits.list(limit=1)]

    # the effective report, one member per page, with where each limit comes from
    rows = [
        (r.actor.email_address, r.period, r.amount, r.source.type)
        for r in org.spend_limits.effective.list(limit=1)
    ]

    deleted = org.spend_limits.delete(bob.id)
    assert deleted.type == "spend_limit_deleted" and deleted.id == bob.id

    # errors arrive as the SDK's typed exceptions
    try:
        org.spend_limits.delete(bob.id)
        not_found = False
    except anthropic.NotFoundError:
        not_found = True

    # spend-limit increase requests (made pending by the Rust side through the fake's
    # own endpoint): `SyncPageCursor`, most recent first, one per page
    reqs = org.spend_limits.increase_requests
    every = list(reqs.list(limit=1))
    by_email = {r.actor.email_address: r for r in every}
    pending_bob = list(reqs.list(status=["pending"], actor_ids=[ids["bob@acme.com"]]))
    assert [r.id for r in pending_bob] == [by_email["bob@acme.com"].id], pending_bob
    carol = reqs.retrieve(by_email["carol@acme.com"].id)
    assert carol.status == "pending" and carol.spend_summary is not None
    summaries = sorted(
        (r.actor.email_address, r.spend_summary.amount, r.spend_summary.source.type)
        for r in every
    )
    approved = reqs.approve(by_email["alice@acme.com"].id, amount="900", period="monthly")
    assert approved.status == "approved" and approved.spend_limit.amount == "900", approved
    assert approved.resolved_by.type == "scoped_api_key_actor" and approved.resolved_at is not None
    denied = reqs.deny(by_email["bob@acme.com"].id, suppress_notification=True)
    again = reqs.deny(by_email["bob@acme.com"].id)
    assert denied.status == again.status == "denied" and denied.spend_summary is None
    refused = []
    for call in (
        lambda: reqs.deny(approved.id),
        lambda: reqs.approve(denied.id, amount="1"),
        lambda: reqs.approve(approved.id, amount="1"),
    ):
        try:
            call()
            refused.append(False)
        except anthropic.BadRequestError:
            refused.append(True)
    alice_now = [
        r.amount
        for r in org.spend_limits.effective.list(user_ids=[ids["alice@acme.com"]], period=["monthly"])
    ]
    statuses = sorted((r.actor.email_address, r.status) for r in reqs.list())
    # the per-user cost report: `SyncReportPageCursor` (next_page / has_more), one row a
    # page, each a `BetaAnalyticsCostUsersItem` with amounts as strings of fractional cents
    report = org.analytics.user_cost_report.list(
        starting_at="2026-11-01T00:00:00Z",
        ending_at="2026-11-03T00:00:00Z",
        bucket_width="1d",
        group_by=["product", "model"],
        limit=1,
    )
    costs = [
        (
            r.actor.email_address,
            r.actor.deleted,
            r.starting_at.isoformat(),
            r.product,
            r.model,
            r.amount,
            r.currency,
        )
        for r in report
    ]

    print(
        json.dumps(
            {
                "requests_order": [r.actor.email_address for r in every],
                "request_summaries": summaries,
                "alice_after_approve": alice_now,
                "request_statuses": statuses,
                "resolved_twice_refused": refused,
                "costs": sorted(costs, key=lambda r: (r[2], r[0] or "", r[3])),
                "members": len(members),
                "user_pages": user_pages,
                "listed": len(listed),
                "effective": sorted(rows, key=lambda r: (r[0], r[1])),
                "deleted_again_is_404": not_found,
            }
        )
    )


if __name__ == "__main__":
    main()

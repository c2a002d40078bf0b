#!/usr/bin/env python3
"""Generate the example directory and usage sample for the `acme` policies.

Writes, next to this script:

- directory.csv   email,department,cost_center,title,location,idp_groups (`;`-separated)
- directory.jsonl the same users, one JSON object per line (idp_groups as a list)
- usage.csv       date,user,product,model,credits for November 2026 up to the 27th

The output is deterministic (fixed seed, no clock): rerun after editing and
commit the result. The people named in `policies/` (override users, explicit
members and excludes) are fixed rows; everyone else is generated so that every
group has members, some users match several groups (a priority tie included),
and some match none and get the workspace default.

Usage: python3 examples/gen_directory.py
"""

import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261127

FIRST = """
adam aisha akira alejandro amara ana andre anika ben bianca carlos chen chloe
daniel david diego elena emeka emma ethan fatima felix gabriel hana hassan ines
isaac jack james jasmine javier jin jonas julia kai karen kwame laura leo lucas
maya mei michael mia nadia naomi nathan nikhil noah olga owen paolo paula quinn
rachel rafael rosa ryan sara sean sofia stefan tariq tessa theo uma victor yara
yusuf zoe
""".split()

LAST = """
adams ahmed alvarez anderson bauer bell brown campbell castillo cohen costa
cruz das diaz dubois edwards evans ferreira fischer foster garcia gupta hall
hansen hughes ito jensen johnson kaur khan kowalski larsen lee lopez martin
mendes meyer miller moreau murphy nakamura novak oconnor okonkwo olsen park
perez popescu quinn rossi russo santos schmidt silva singh smith sato taylor
tanaka torres walsh weber wilson wong yilmaz young
""".split()

# People the policies name: (email, department, cost_center, title, location, idp_groups).
NAMED = [
    ("alice.nguyen@acme.com", "Engineering", "CC-400", "Senior Software Engineer", "New York, NY",
     ["all-staff", "eng", "github-users", "codex-beta"]),
    ("omar.haddad@acme.com", "Engineering", "CC-400", "VP Engineering", "New York, NY",
     ["all-staff", "eng", "github-users", "eng-leads"]),
    ("priya.sharma@acme.com", "Engineering", "CC-400", "Intern, Software Engineering", "New York, NY",
     ["all-staff", "eng", "github-users", "interns"]),
    ("ext.kpatel@acme.com", "Engineering", "CC-400", "Contractor, Software Engineer", "Remote",
     ["contractors", "github-users"]),
    ("ext.jlim@acme.com", "Engineering", "CC-430", "Contractor, Mobile Engineer", "Remote",
     ["contractors", "github-users"]),
    ("raj.patel@acme.com", "Data Science", "CC-450", "Staff ML Engineer", "San Francisco, CA",
     ["all-staff", "ml-platform", "github-users"]),
    ("nora.kim@acme.com", "Data Science", "CC-450", "Director, Machine Learning", "San Francisco, CA",
     ["all-staff", "ml-platform", "github-users", "eng-leads"]),
    ("wei.zhang@acme.com", "Data Science", "CC-450", "Senior Data Engineer", "New York, NY",
     ["all-staff", "github-users", "platform-oncall"]),
    ("luis.ramirez@acme.com", "Data Science", "CC-450", "Data Engineer", "Austin, TX",
     ["all-staff", "github-users", "platform-oncall"]),
    ("marcus.reed@acme.com", "Security", "CC-470", "Senior Security Engineer", "New York, NY",
     ["all-staff", "security-team", "github-users"]),
    ("hannah.brooks@acme.com", "Legal", "CC-210", "Privacy Counsel", "New York, NY",
     ["all-staff", "security-team"]),
    ("lena.fischer@acme.com", "Product", "CC-300", "Technical Program Manager", "New York, NY",
     ["all-staff", "github-users"]),
    ("sam.okafor@acme.com", "Product", "CC-300", "Senior Product Manager", "Toronto, ON",
     ["all-staff"]),
    ("tom.becker@acme.com", "Design", "CC-310", "Design Systems Engineer", "London, UK",
     ["all-staff", "github-users"]),
    ("jordan.ellis@acme.com", "Sales", "CC-600", "Solutions Engineer", "New York, NY",
     ["all-staff", "sales-na"]),
    ("maria.gonzalez@acme.com", "Customer Support", "CC-700", "Senior Support Specialist", "Austin, TX",
     ["all-staff", "support"]),
    ("kevin.obrien@acme.com", "Customer Support", "CC-700", "Support Operations Manager", "Austin, TX",
     ["all-staff", "support"]),
    ("ben.carter@acme.com", "Customer Support", "CC-700", "Support Specialist", "Austin, TX",
     ["all-staff", "support"]),
    ("ethan.wright@acme.com", "Data Science", "CC-450", "Intern, Data Science", "San Francisco, CA",
     ["all-staff", "interns"]),
    ("dana.whitfield@acme.com", "Executive", "CC-100", "Chief Technology Officer", "New York, NY",
     ["all-staff", "eng-leads", "github-users"]),
    ("olivia.chen@acme.com", "Executive", "CC-100", "Chief Financial Officer", "New York, NY",
     ["all-staff", "finance"]),
    ("grace.liu@acme.com", "Executive", "CC-100", "Senior Director, Office of the CEO", "New York, NY",
     ["all-staff"]),
    ("rebecca.stone@acme.com", "Executive", "CC-100", "Chief Executive Officer", "New York, NY",
     ["all-staff"]),
]

# Generated headcount per (department, cost_center): titles with weights, locations,
# and the Okta groups everyone there gets plus extra ones with probabilities.
SITES_US = ["New York, NY", "San Francisco, CA", "Austin, TX", "Remote"]
SITES_ALL = SITES_US + ["London, UK", "Dublin, IE", "Toronto, ON"]

TEAMS = [
    # department, cost_center, count, [(title, weight)], locations, base groups, [(extra group, p)]
    ("Engineering", "CC-400", 62,
     [("Software Engineer", 5), ("Senior Software Engineer", 5), ("Staff Software Engineer", 2),
      ("Principal Engineer", 1), ("Engineering Manager", 2), ("Intern, Software Engineering", 1)],
     SITES_ALL, ["all-staff", "eng", "github-users"],
     [("codex-beta", 0.3), ("platform-oncall", 0.1), ("ml-platform", 0.05)]),
    ("Engineering", "CC-430", 16,
     [("iOS Engineer", 3), ("Android Engineer", 3), ("Senior Mobile Engineer", 2), ("Engineering Manager", 1)],
     SITES_ALL, ["all-staff", "eng", "github-users"], [("codex-beta", 0.2)]),
    ("Engineering", "CC-410", 16,
     [("Platform Engineer", 4), ("Senior Platform Engineer", 3), ("Staff Platform Engineer", 1),
      ("Engineering Manager", 1)],
     SITES_US, ["all-staff", "eng", "github-users"], [("platform-oncall", 0.7), ("codex-beta", 0.3)]),
    ("Engineering", "CC-420", 12,
     [("Site Reliability Engineer", 4), ("Senior Site Reliability Engineer", 2), ("Infrastructure Engineer", 2)],
     SITES_US, ["all-staff", "eng", "github-users", "platform-oncall"], []),
    ("Data Science", "CC-450", 28,
     [("Data Scientist", 4), ("Senior Data Scientist", 3), ("Data Engineer", 3), ("Analytics Engineer", 2),
      ("ML Engineer", 2), ("Intern, Data Science", 1)],
     SITES_US, ["all-staff", "github-users"], [("ml-platform", 0.25), ("platform-oncall", 0.08)]),
    ("Security", "CC-470", 10,
     [("Security Engineer", 3), ("Application Security Engineer", 2), ("Security Analyst", 2)],
     SITES_US, ["all-staff", "security-team", "github-users"], []),
    ("Product", "CC-300", 20,
     [("Product Manager", 4), ("Senior Product Manager", 3), ("Group Product Manager", 1),
      ("Technical Program Manager", 2), ("Intern, Product Management", 1)],
     SITES_ALL, ["all-staff"], [("codex-beta", 0.1)]),
    ("Design", "CC-310", 14,
     [("Product Designer", 4), ("Senior Product Designer", 2), ("UX Researcher", 2), ("Content Designer", 1)],
     SITES_ALL, ["all-staff"], []),
    ("Sales", "CC-600", 30,
     [("Account Executive", 5), ("Sales Development Representative", 4), ("Solutions Engineer", 2),
      ("Sales Manager", 1), ("Partner Support Engineer", 1)],
     SITES_US, ["all-staff", "sales-na"], []),
    ("Sales", "CC-610", 18,
     [("Account Executive", 5), ("Sales Development Representative", 3), ("Solutions Engineer", 2),
      ("Sales Manager", 1)],
     ["London, UK", "Dublin, IE"], ["all-staff", "sales-emea"], []),
    ("Marketing", "CC-620", 18,
     [("Marketing Manager", 3), ("Content Strategist", 2), ("Growth Analyst", 2), ("Brand Designer", 1)],
     SITES_US, ["all-staff", "marketing"], []),
    ("Revenue Operations", "CC-630", 8,
     [("Revenue Operations Analyst", 3), ("Sales Operations Manager", 1)],
     SITES_US, ["all-staff"], []),
    ("Customer Support", "CC-700", 40,
     [("Support Specialist", 6), ("Senior Support Specialist", 3), ("Technical Support Engineer", 2),
      ("Support Team Lead", 1)],
     ["Austin, TX", "Dublin, IE", "Remote"], ["all-staff", "support"], []),
    ("Finance", "CC-200", 12,
     [("Financial Analyst", 3), ("Senior Accountant", 2), ("FP&A Manager", 1), ("Controller", 1),
      ("Contractor, Accounts Payable", 1)],
     ["New York, NY"], ["all-staff", "finance"], []),
    ("Legal", "CC-210", 6,
     [("Corporate Counsel", 2), ("Paralegal", 2), ("Commercial Counsel", 1)],
     ["New York, NY", "London, UK"], ["all-staff", "legal"], []),
    ("People", "CC-220", 12,
     [("Recruiter", 3), ("HR Business Partner", 2), ("People Operations Specialist", 2),
      ("Intern, People Operations", 1)],
     SITES_US, ["all-staff"], []),
    ("IT", "CC-230", 9,
     [("IT Systems Administrator", 2), ("IT Helpdesk Specialist", 2), ("Workplace Coordinator", 1)],
     ["New York, NY", "Austin, TX"], ["all-staff", "it-admins"], []),
    ("Executive", "CC-100", 4,
     [("VP Sales", 1), ("VP Marketing", 1), ("Chief Operating Officer", 1), ("VP Customer Experience", 1)],
     ["New York, NY"], ["all-staff"], []),
]


def pick(rng, weighted):
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def directory(rng):
    users = [dict(zip(["email", "department", "cost_center", "title", "location", "idp_groups"], row))
             for row in NAMED]
    taken = {u["email"] for u in users}
    # Executive titles are unique: draw them without replacement.
    for dept, cc, count, titles, sites, base, extra in TEAMS:
        pool = list(titles)
        for _ in range(count):
            if dept == "Executive":
                title = pool.pop(0)[0]
            else:
                title = pick(rng, titles)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            email, n = f"{first}.{last}@acme.com", 2
            while email in taken:
                email, n = f"{first}.{last}{n}@acme.com", n + 1
            taken.add(email)
            groups = list(base)
            groups += [g for g, p in extra if rng.random() < p]
            if title.startswith("Intern"):
                groups.append("interns")
            if "Manager" in title or "Lead" in title:
                groups.append(f"{dept.lower().replace(' ', '-')}-managers")
            users.append({
                "email": email, "department": dept, "cost_center": cc, "title": title,
                "location": rng.choice(sites), "idp_groups": groups,
            })
    return users


# Usage: products and the models seen in each.
MODELS = {
    "chatgpt": [("gpt-5", 10), ("gpt-5-thinking", 4), ("gpt-4o", 3), ("o3", 2), ("gpt-5-pro", 1)],
    "codex": [("gpt-5-codex", 6), ("gpt-5.1-codex", 3), ("codex-mini-latest", 2)],
    "api": [("gpt-5-mini", 4), ("gpt-4.1", 2), ("o4-mini", 2), ("gpt-image-1", 1)],
    "sora": [("sora-2", 1)],
}

# Monthly spend range and product mix by department.
PROFILES = {
    "Engineering": ((1200, 7000), [("codex", 7), ("chatgpt", 3)]),
    "Data Science": ((1500, 8000), [("chatgpt", 5), ("codex", 3), ("api", 2)]),
    "Security": ((1200, 5500), [("codex", 5), ("chatgpt", 5)]),
    "Product": ((600, 3000), [("chatgpt", 8), ("codex", 1), ("sora", 1)]),
    "Design": ((600, 3000), [("chatgpt", 6), ("sora", 2), ("api", 1), ("codex", 1)]),
    "Sales": ((300, 2200), [("chatgpt", 20), ("codex", 1)]),
    "Marketing": ((300, 2400), [("chatgpt", 6), ("sora", 3), ("api", 1)]),
    "Revenue Operations": ((200, 1200), [("chatgpt", 9), ("api", 1)]),
    "Customer Support": ((400, 1400), [("chatgpt", 1)]),
    "Finance": ((200, 2000), [("chatgpt", 10), ("api", 1)]),
    "Legal": ((200, 1800), [("chatgpt", 1)]),
    "People": ((100, 900), [("chatgpt", 1)]),
    "IT": ((100, 1200), [("chatgpt", 3), ("codex", 1)]),
    "Executive": ((800, 4500), [("chatgpt", 9), ("codex", 1)]),
}

# Heavy or borderline users, so evaluation shows warnings and blocks:
# email -> (monthly target, product mix, model overrides {product: [(model, w)]}).
HEAVY = {
    "alice.nguyen@acme.com": (11800, [("codex", 8), ("chatgpt", 2)], {}),
    "raj.patel@acme.com": (19500, [("chatgpt", 7), ("api", 3)],
                           {"chatgpt": [("gpt-5-pro", 6), ("gpt-5-thinking", 2), ("o3", 1)]}),
    "wei.zhang@acme.com": (16200, [("codex", 7), ("chatgpt", 2), ("api", 1)], {}),
    "nora.kim@acme.com": (9400, [("chatgpt", 6), ("api", 4)],
                          {"chatgpt": [("gpt-5-pro", 3), ("gpt-5", 3)]}),
    "luis.ramirez@acme.com": (9100, [("codex", 6), ("chatgpt", 4)], {}),
    "marcus.reed@acme.com": (7100, [("codex", 6), ("chatgpt", 4)], {}),
    "maria.gonzalez@acme.com": (2210, [("chatgpt", 1)], {}),
    "ben.carter@acme.com": (1580, [("chatgpt", 1)], {}),
    "ethan.wright@acme.com": (930, [("chatgpt", 6), ("codex", 4)], {}),
    "jordan.ellis@acme.com": (2600, [("chatgpt", 5), ("codex", 4)], {}),
    "tom.becker@acme.com": (3300, [("codex", 7), ("chatgpt", 3)], {}),
    "olivia.chen@acme.com": (5200, [("chatgpt", 1)],
                             {"chatgpt": [("gpt-5-pro", 2), ("gpt-5", 3), ("gpt-5-thinking", 2)]}),
    "priya.sharma@acme.com": (780, [("codex", 7), ("chatgpt", 3)], {}),
}

PERIOD_START = date(2026, 11, 1)
LAST_DAY = date(2026, 11, 27)  # "today" for the examples: usage so far this month


def usage(rng, users):
    days = [PERIOD_START + timedelta(n) for n in range((LAST_DAY - PERIOD_START).days + 1)]
    rows = {}
    for u in users:
        email = u["email"]
        heavy = HEAVY.get(email)
        if heavy:
            target, mix, models = heavy
            active_days = [d for d in days if d.weekday() < 5 or rng.random() < 0.3]
        else:
            if u["title"].startswith("Contractor") or rng.random() < 0.35:
                continue  # not every seat is used every month
            (low, high), mix = PROFILES[u["department"]]
            target = rng.uniform(low, high)
            if u["title"].startswith("Intern"):
                target = rng.uniform(150, 700)
            models = {}
            weekdays = [d for d in days if d.weekday() < 5]
            active_days = sorted(rng.sample(weekdays, rng.randint(3, 9)))
        weights = [rng.uniform(0.4, 1.6) for _ in active_days]
        scale = target / sum(weights)
        for day, w in zip(active_days, weights):
            parts = [rng.uniform(0.2, 1.0) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
            for part in parts:
                product = pick(rng, mix)
                model = pick(rng, models.get(product, MODELS[product]))
                key = (day.isoformat(), email, product, model)
                rows[key] = rows.get(key, 0.0) + w * scale * part / sum(parts)
    return [(*k, f"{v:.2f}") for k, v in sorted(rows.items())]


def main():
    rng = random.Random(SEED)
    users = directory(rng)
    fields = ["email", "department", "cost_center", "title", "location", "idp_groups"]
    with open(HERE / "directory.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(fields)
        for u in users:
            w.writerow([u[k] if k != "idp_groups" else ";".join(u[k]) for k in fields])
    with open(HERE / "directory.jsonl", "w") as f:
        for u in users:
            f.write(json.dumps({k: u[k] for k in fields}, ensure_ascii=False) + "\n")
    with open(HERE / "usage.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", "user", "product", "model", "credits"])
        w.writerows(usage(rng, users))


if __name__ == "__main__":
    main()

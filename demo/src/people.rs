//! The demo's people: a directory shaped like the example organisation's, of any size.
//!
//! Teams mirror `examples/directory.csv` (departments, cost centers, titles,
//! offices and Okta groups chosen so every group of `policies/` selects
//! someone), scaled to the number of users asked for. The people the policies
//! name (override users, explicit members and excludes) come first, as in the
//! example directory, so their overrides and exceptions apply. The same seed
//! gives the same people.

use std::collections::HashMap;

use budgit_engine::r#gen::rng::Rng;
use serde_json::{Value, json};

/// One person of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// The email, unique.
    pub email: String,
    /// `department`.
    pub department: &'static str,
    /// `cost_center`.
    pub cost_center: &'static str,
    /// `title`.
    pub title: String,
    /// `location`.
    pub location: &'static str,
    /// `idp_groups`.
    pub idp_groups: Vec<String>,
    /// Named in the policies: an override or an exception is about them.
    pub named: bool,
}

impl Person {
    /// The directory row as JSON Lines sends it.
    pub fn to_json(&self) -> Value {
        json!({
            "email": self.email,
            "department": self.department,
            "cost_center": self.cost_center,
            "title": self.title,
            "location": self.location,
            "idp_groups": self.idp_groups,
        })
    }
}

type Named = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static [&'static str]);

/// People the example policies name, as in `examples/directory.csv`.
const NAMED: [Named; 23] = [
    (
        "alice.nguyen@acme.com",
        "Engineering",
        "CC-400",
        "Senior Software Engineer",
        "New York, NY",
        &["all-staff", "eng", "github-users", "codex-beta"],
    ),
    (
        "omar.haddad@acme.com",
        "Engineering",
        "CC-400",
        "VP Engineering",
        "New York, NY",
        &["all-staff", "eng", "github-users", "eng-leads"],
    ),
    (
        "priya.sharma@acme.com",
        "Engineering",
        "CC-400",
        "Intern, Software Engineering",
        "New York, NY",
        &["all-staff", "eng", "github-users", "interns"],
    ),
    (
        "ext.kpatel@acme.com",
        "Engineering",
        "CC-400",
        "Contractor, Software Engineer",
        "Remote",
        &["contractors", "github-users"],
    ),
    (
        "ext.jlim@acme.com",
        "Engineering",
        "CC-430",
        "Contractor, Mobile Engineer",
        "Remote",
        &["contractors", "github-users"],
    ),
    (
        "raj.patel@acme.com",
        "Data Science",
        "CC-450",
        "Staff ML Engineer",
        "San Francisco, CA",
        &["all-staff", "ml-platform", "github-users"],
    ),
    (
        "nora.kim@acme.com",
        "Data Science",
        "CC-450",
        "Director, Machine Learning",
        "San Francisco, CA",
        &["all-staff", "ml-platform", "github-users", "eng-leads"],
    ),
    (
        "wei.zhang@acme.com",
        "Data Science",
        "CC-450",
        "Senior Data Engineer",
        "New York, NY",
        &["all-staff", "github-users", "platform-oncall"],
    ),
    (
        "luis.ramirez@acme.com",
        "Data Science",
        "CC-450",
        "Data Engineer",
        "Austin, TX",
        &["all-staff", "github-users", "platform-oncall"],
    ),
    (
        "marcus.reed@acme.com",
        "Security",
        "CC-470",
        "Senior Security Engineer",
        "New York, NY",
        &["all-staff", "security-team", "github-users"],
    ),
    (
        "hannah.brooks@acme.com",
        "Legal",
        "CC-210",
        "Privacy Counsel",
        "New York, NY",
        &["all-staff", "security-team"],
    ),
    (
        "lena.fischer@acme.com",
        "Product",
        "CC-300",
        "Technical Program Manager",
        "New York, NY",
        &["all-staff", "github-users"],
    ),
    ("sam.okafor@acme.com", "Product", "CC-300", "Senior Product Manager", "Toronto, ON", &["all-staff"]),
    (
        "tom.becker@acme.com",
        "Design",
        "CC-310",
        "Design Systems Engineer",
        "London, UK",
        &["all-staff", "github-users"],
    ),
    (
        "jordan.ellis@acme.com",
        "Sales",
        "CC-600",
        "Solutions Engineer",
        "New York, NY",
        &["all-staff", "sales-na"],
    ),
    (
        "maria.gonzalez@acme.com",
        "Customer Support",
        "CC-700",
        "Senior Support Specialist",
        "Austin, TX",
        &["all-staff", "support"],
    ),
    (
        "kevin.obrien@acme.com",
        "Customer Support",
        "CC-700",
        "Support Operations Manager",
        "Austin, TX",
        &["all-staff", "support"],
    ),
    (
        "ben.carter@acme.com",
        "Customer Support",
        "CC-700",
        "Support Specialist",
        "Austin, TX",
        &["all-staff", "support"],
    ),
    (
        "ethan.wright@acme.com",
        "Data Science",
        "CC-450",
        "Intern, Data Science",
        "San Francisco, CA",
        &["all-staff", "interns"],
    ),
    (
        "dana.whitfield@acme.com",
        "Executive",
        "CC-100",
        "Chief Technology Officer",
        "New York, NY",
        &["all-staff", "eng-leads", "github-users"],
    ),
    (
        "olivia.chen@acme.com",
        "Executive",
        "CC-100",
        "Chief Financial Officer",
        "New York, NY",
        &["all-staff", "finance"],
    ),
    (
        "grace.liu@acme.com",
        "Executive",
        "CC-100",
        "Senior Director, Office of the CEO",
        "New York, NY",
        &["all-staff"],
    ),
    (
        "rebecca.stone@acme.com",
        "Executive",
        "CC-100",
        "Chief Executive Officer",
        "New York, NY",
        &["all-staff"],
    ),
];

const SITES_US: &[&str] = &["New York, NY", "San Francisco, CA", "Austin, TX", "Remote"];
const SITES_ALL: &[&str] =
    &["New York, NY", "San Francisco, CA", "Austin, TX", "Remote", "London, UK", "Dublin, IE", "Toronto, ON"];

/// A team: department, cost center, weight (head count in the example), titles with
/// weights, offices, the Okta groups everyone has, and extra ones with their odds.
struct Team {
    department: &'static str,
    cost_center: &'static str,
    weight: u32,
    titles: &'static [(&'static str, u32)],
    sites: &'static [&'static str],
    base: &'static [&'static str],
    extra: &'static [(&'static str, f64)],
}

const TEAMS: [Team; 17] = [
    Team {
        department: "Engineering",
        cost_center: "CC-400",
        weight: 62,
        titles: &[
            ("Software Engineer", 5),
            ("Senior Software Engineer", 5),
            ("Staff Software Engineer", 2),
            ("Principal Engineer", 1),
            ("Engineering Manager", 2),
            ("Intern, Software Engineering", 1),
        ],
        sites: SITES_ALL,
        base: &["all-staff", "eng", "github-users"],
        extra: &[("codex-beta", 0.3), ("platform-oncall", 0.1), ("ml-platform", 0.05)],
    },
    Team {
        department: "Engineering",
        cost_center: "CC-430",
        weight: 16,
        titles: &[
            ("iOS Engineer", 3),
            ("Android Engineer", 3),
            ("Senior Mobile Engineer", 2),
            ("Engineering Manager", 1),
        ],
        sites: SITES_ALL,
        base: &["all-staff", "eng", "github-users"],
        extra: &[("codex-beta", 0.2)],
    },
    Team {
        department: "Engineering",
        cost_center: "CC-410",
        weight: 16,
        titles: &[
            ("Platform Engineer", 4),
            ("Senior Platform Engineer", 3),
            ("Staff Platform Engineer", 1),
            ("Engineering Manager", 1),
        ],
        sites: SITES_US,
        base: &["all-staff", "eng", "github-users"],
        extra: &[("platform-oncall", 0.7), ("codex-beta", 0.3)],
    },
    Team {
        department: "Engineering",
        cost_center: "CC-420",
        weight: 12,
        titles: &[
            ("Site Reliability Engineer", 4),
            ("Senior Site Reliability Engineer", 2),
            ("Infrastructure Engineer", 2),
        ],
        sites: SITES_US,
        base: &["all-staff", "eng", "github-users", "platform-oncall"],
        extra: &[],
    },
    Team {
        department: "Data Science",
        cost_center: "CC-450",
        weight: 28,
        titles: &[
            ("Data Scientist", 4),
            ("Senior Data Scientist", 3),
            ("Data Engineer", 3),
            ("Analytics Engineer", 2),
            ("ML Engineer", 2),
            ("Intern, Data Science", 1),
        ],
        sites: SITES_US,
        base: &["all-staff", "github-users"],
        extra: &[("ml-platform", 0.25), ("platform-oncall", 0.08)],
    },
    Team {
        department: "Security",
        cost_center: "CC-470",
        weight: 10,
        titles: &[("Security Engineer", 3), ("Application Security Engineer", 2), ("Security Analyst", 2)],
        sites: SITES_US,
        base: &["all-staff", "security-team", "github-users"],
        extra: &[],
    },
    Team {
        department: "Product",
        cost_center: "CC-300",
        weight: 20,
        titles: &[
            ("Product Manager", 4),
            ("Senior Product Manager", 3),
            ("Group Product Manager", 1),
            ("Technical Program Manager", 2),
            ("Intern, Product Management", 1),
        ],
        sites: SITES_ALL,
        base: &["all-staff"],
        extra: &[("codex-beta", 0.1)],
    },
    Team {
        department: "Design",
        cost_center: "CC-310",
        weight: 14,
        titles: &[
            ("Product Designer", 4),
            ("Senior Product Designer", 2),
            ("UX Researcher", 2),
            ("Content Designer", 1),
        ],
        sites: SITES_ALL,
        base: &["all-staff"],
        extra: &[],
    },
    Team {
        department: "Sales",
        cost_center: "CC-600",
        weight: 30,
        titles: &[
            ("Account Executive", 5),
            ("Sales Development Representative", 4),
            ("Solutions Engineer", 2),
            ("Sales Manager", 1),
            ("Partner Support Engineer", 1),
        ],
        sites: SITES_US,
        base: &["all-staff", "sales-na"],
        extra: &[],
    },
    Team {
        department: "Sales",
        cost_center: "CC-610",
        weight: 18,
        titles: &[
            ("Account Executive", 5),
            ("Sales Development Representative", 3),
            ("Solutions Engineer", 2),
            ("Sales Manager", 1),
        ],
        sites: &["London, UK", "Dublin, IE"],
        base: &["all-staff", "sales-emea"],
        extra: &[],
    },
    Team {
        department: "Marketing",
        cost_center: "CC-620",
        weight: 18,
        titles: &[
            ("Marketing Manager", 3),
            ("Content Strategist", 2),
            ("Growth Analyst", 2),
            ("Brand Designer", 1),
        ],
        sites: SITES_US,
        base: &["all-staff", "marketing"],
        extra: &[],
    },
    Team {
        department: "Revenue Operations",
        cost_center: "CC-630",
        weight: 8,
        titles: &[("Revenue Operations Analyst", 3), ("Sales Operations Manager", 1)],
        sites: SITES_US,
        base: &["all-staff"],
        extra: &[],
    },
    Team {
        department: "Customer Support",
        cost_center: "CC-700",
        weight: 40,
        titles: &[
            ("Support Specialist", 6),
            ("Senior Support Specialist", 3),
            ("Technical Support Engineer", 2),
            ("Support Team Lead", 1),
        ],
        sites: &["Austin, TX", "Dublin, IE", "Remote"],
        base: &["all-staff", "support"],
        extra: &[],
    },
    Team {
        department: "Finance",
        cost_center: "CC-200",
        weight: 12,
        titles: &[
            ("Financial Analyst", 3),
            ("Senior Accountant", 2),
            ("FP&A Manager", 1),
            ("Controller", 1),
            ("Contractor, Accounts Payable", 1),
        ],
        sites: &["New York, NY"],
        base: &["all-staff", "finance"],
        extra: &[],
    },
    Team {
        department: "Legal",
        cost_center: "CC-210",
        weight: 6,
        titles: &[("Corporate Counsel", 2), ("Paralegal", 2), ("Commercial Counsel", 1)],
        sites: &["New York, NY", "London, UK"],
        base: &["all-staff", "legal"],
        extra: &[],
    },
    Team {
        department: "People",
        cost_center: "CC-220",
        weight: 12,
        titles: &[
            ("Recruiter", 3),
            ("HR Business Partner", 2),
            ("People Operations Specialist", 2),
            ("Intern, People Operations", 1),
        ],
        sites: SITES_US,
        base: &["all-staff"],
        extra: &[],
    },
    Team {
        department: "IT",
        cost_center: "CC-230",
        weight: 9,
        titles: &[
            ("IT Systems Administrator", 2),
            ("IT Helpdesk Specialist", 2),
            ("Workplace Coordinator", 1),
        ],
        sites: &["New York, NY", "Austin, TX"],
        base: &["all-staff", "it-admins"],
        extra: &[],
    },
];

/// Executive titles: each held once, so the executives' group stays small at any size.
const EXECUTIVES: [&str; 10] = [
    "VP Sales",
    "VP Marketing",
    "Chief Operating Officer",
    "VP Customer Experience",
    "VP Finance",
    "VP People",
    "VP Product",
    "Chief Information Security Officer",
    "VP Infrastructure",
    "Chief Revenue Officer",
];

const FIRST: [&str; 72] = [
    "adam",
    "aisha",
    "akira",
    "alejandro",
    "amara",
    "ana",
    "andre",
    "anika",
    "ben",
    "bianca",
    "carlos",
    "chen",
    "chloe",
    "daniel",
    "david",
    "diego",
    "elena",
    "emeka",
    "emma",
    "ethan",
    "fatima",
    "felix",
    "gabriel",
    "hana",
    "hassan",
    "ines",
    "isaac",
    "jack",
    "james",
    "jasmine",
    "javier",
    "jin",
    "jonas",
    "julia",
    "kai",
    "karen",
    "kwame",
    "laura",
    "leo",
    "lucas",
    "maya",
    "mei",
    "michael",
    "mia",
    "nadia",
    "naomi",
    "nathan",
    "nikhil",
    "noah",
    "olga",
    "owen",
    "paolo",
    "paula",
    "quinn",
    "rachel",
    "rafael",
    "rosa",
    "ryan",
    "sara",
    "sean",
    "sofia",
    "stefan",
    "tariq",
    "tessa",
    "theo",
    "uma",
    "victor",
    "yara",
    "yusuf",
    "zoe",
    "amir",
    "lina",
];

const LAST: [&str; 66] = [
    "adams", "ahmed", "alvarez", "anderson", "bauer", "bell", "brown", "campbell", "castillo", "cohen",
    "costa", "cruz", "das", "diaz", "dubois", "edwards", "evans", "ferreira", "fischer", "foster", "garcia",
    "gupta", "hall", "hansen", "hughes", "ito", "jensen", "johnson", "kaur", "khan", "kowalski", "larsen",
    "lee", "lopez", "martin", "mendes", "meyer", "miller", "moreau", "murphy", "nakamura", "novak",
    "oconnor", "okonkwo", "olsen", "park", "perez", "popescu", "quinn", "rossi", "russo", "santos",
    "schmidt", "silva", "singh", "smith", "sato", "taylor", "tanaka", "torres", "walsh", "weber", "wilson",
    "wong", "yilmaz", "young",
];

/// The fewest users a demo has: everyone the policies name, and a few per team.
pub const MIN_USERS: usize = 60;

/// Draws `n` people (at least [`MIN_USERS`]) for `seed`.
pub fn people(n: usize, seed: u64) -> Vec<Person> {
    let n = n.max(MIN_USERS);
    let mut rng = Rng::new(seed, 0xde30_0001);
    let mut out: Vec<Person> = NAMED
        .iter()
        .map(|(email, department, cost_center, title, location, groups)| Person {
            email: (*email).to_string(),
            department,
            cost_center,
            title: (*title).to_string(),
            location,
            idp_groups: groups.iter().map(|g| (*g).to_string()).collect(),
            named: true,
        })
        .collect();
    // keyed by `first.last`, so a generated name never repeats a named person's email
    let mut taken: HashMap<String, u32> =
        out.iter().map(|p| (p.email.trim_end_matches("@acme.com").to_string(), 1)).collect();
    let mut name = |rng: &mut Rng| {
        let first = FIRST[rng.index(FIRST.len())];
        let last = LAST[rng.index(LAST.len())];
        let base = format!("{first}.{last}");
        let seen = taken.entry(base.clone()).or_insert(0);
        *seen += 1;
        if *seen == 1 { format!("{base}@acme.com") } else { format!("{base}{seen}@acme.com") }
    };
    // a handful of executives, then the teams in proportion to the example's head count
    let executives = (n / 300).clamp(2, EXECUTIVES.len());
    for title in EXECUTIVES.iter().take(executives) {
        let email = name(&mut rng);
        out.push(Person {
            email,
            department: "Executive",
            cost_center: "CC-100",
            title: (*title).to_string(),
            location: "New York, NY",
            idp_groups: vec!["all-staff".to_string()],
            named: false,
        });
    }
    let rest = n.saturating_sub(out.len());
    let total: u32 = TEAMS.iter().map(|t| t.weight).sum();
    let mut given = 0usize;
    let mut cumulative = 0u64;
    for team in &TEAMS {
        cumulative += u64::from(team.weight);
        // largest-remainder split: the counts always add up to `rest`
        let upto = (rest as u64 * cumulative / u64::from(total)) as usize;
        let count = upto - given;
        given = upto;
        let title_total: u32 = team.titles.iter().map(|t| t.1).sum();
        for _ in 0..count {
            let title = pick(&mut rng, team.titles, title_total);
            let email = name(&mut rng);
            let mut groups: Vec<String> = team.base.iter().map(|g| (*g).to_string()).collect();
            for (g, p) in team.extra {
                if rng.chance(*p) {
                    groups.push((*g).to_string());
                }
            }
            if title.starts_with("Intern") {
                groups.push("interns".to_string());
            }
            if title.contains("Manager") || title.contains("Lead") {
                groups.push(format!("{}-managers", team.department.to_lowercase().replace(' ', "-")));
            }
            out.push(Person {
                email,
                department: team.department,
                cost_center: team.cost_center,
                title: title.to_string(),
                location: team.sites[rng.index(team.sites.len())],
                idp_groups: groups,
                named: false,
            });
        }
    }
    out
}

fn pick(rng: &mut Rng, weighted: &[(&'static str, u32)], total: u32) -> &'static str {
    let mut x = rng.below(u64::from(total)) as u32;
    for (v, w) in weighted {
        if x < *w {
            return v;
        }
        x -= w;
    }
    weighted.last().map_or("Specialist", |w| w.0)
}

/// The directory as JSON Lines, as `POST /v1/users/import` takes it.
pub fn jsonl(people: &[Person]) -> Vec<u8> {
    let mut out = Vec::with_capacity(people.len() * 200);
    for p in people {
        out.extend_from_slice(p.to_json().to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_exact_and_emails_unique() {
        for n in [60, 61, 500, 3000] {
            let p = people(n, 7);
            assert_eq!(p.len(), n);
            let mut emails: Vec<_> = p.iter().map(|p| p.email.as_str()).collect();
            emails.sort_unstable();
            emails.dedup();
            assert_eq!(emails.len(), n);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_people() {
        assert_eq!(people(400, 3), people(400, 3));
        assert_ne!(people(400, 3), people(400, 4));
    }
}

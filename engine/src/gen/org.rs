//! The synthetic people and the group rules that select them.
//!
//! Group selectors are built as a small predicate tree ([`Predicate`]) so the
//! generator can both write them as CEL and evaluate them itself: it needs each
//! user's winning group to scale limits to the usage of the people they apply to.

use std::fmt::Write as _;

use super::rng::Rng;

/// The e-mail domain of every generated user.
pub const DOMAIN: &str = "acme.example";

/// Departments with their relative head count, slug and usage profile.
pub(crate) const DEPARTMENTS: [(&str, u32, &str, Profile); 12] = [
    ("Engineering", 30, "engineering", Profile::Builder),
    ("Data", 8, "data", Profile::Analyst),
    ("Research", 6, "research", Profile::Analyst),
    ("Product", 6, "product", Profile::Business),
    ("Design", 4, "design", Profile::Business),
    ("Sales", 14, "sales", Profile::Business),
    ("Marketing", 6, "marketing", Profile::Business),
    ("Support", 10, "support", Profile::Business),
    ("Finance", 4, "finance", Profile::Business),
    ("Legal", 2, "legal", Profile::Business),
    ("People", 3, "people", Profile::Business),
    ("Operations", 7, "operations", Profile::Builder),
];

/// Roles per department (index as in [`DEPARTMENTS`]).
const ROLES: [&[&str]; 12] = [
    &["Software Engineer", "Site Reliability Engineer", "Security Engineer"],
    &["Data Scientist", "Data Engineer", "Analytics Engineer"],
    &["Research Scientist", "Research Engineer"],
    &["Product Manager", "Technical Program Manager"],
    &["Product Designer", "UX Researcher"],
    &["Account Executive", "Sales Engineer", "Solutions Architect"],
    &["Marketing Manager", "Content Strategist"],
    &["Support Specialist", "Support Engineer"],
    &["Financial Analyst", "Accountant"],
    &["Counsel", "Paralegal"],
    &["Recruiter", "People Partner"],
    &["Operations Analyst", "IT Administrator"],
];

/// Title levels with their relative frequency (per mille).
const LEVELS: [(&str, u32); 8] = [
    ("Intern", 40),
    ("Associate", 120),
    ("", 390),
    ("Senior", 280),
    ("Staff", 100),
    ("Principal", 45),
    ("Director", 20),
    ("VP", 5),
];

/// Offices, with the region IdP group each belongs to.
pub(crate) const LOCATIONS: [(&str, &str); 11] = [
    ("San Francisco", "amer"),
    ("New York", "amer"),
    ("Seattle", "amer"),
    ("Austin", "amer"),
    ("London", "emea"),
    ("Dublin", "emea"),
    ("Berlin", "emea"),
    ("Paris", "emea"),
    ("Singapore", "apac"),
    ("Tokyo", "apac"),
    ("Remote", "amer"),
];

const FIRST: [&str; 32] = [
    "ada", "alan", "alice", "amir", "ana", "ben", "chen", "dana", "diego", "elif", "emma", "farah", "grace",
    "hana", "ivan", "jade", "jon", "kai", "lena", "li", "maya", "nia", "omar", "priya", "rosa", "sam",
    "sofia", "tariq", "uma", "vic", "wen", "yuki",
];
const LAST: [&str; 32] = [
    "adams", "baker", "cohen", "diaz", "evans", "fischer", "garcia", "haddad", "ito", "jensen", "kim",
    "lopez", "martin", "nguyen", "okafor", "patel", "quinn", "rossi", "silva", "tanaka", "usman", "varga",
    "wang", "xu", "yilmaz", "zhang", "moreau", "novak", "olsen", "park", "reyes", "singh",
];

/// How a person tends to use the products (which product/model mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Codex-heavy.
    Builder,
    /// API- and reasoning-heavy.
    Analyst,
    /// ChatGPT-heavy.
    Business,
}

/// One generated user.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// The email, unique.
    pub email: String,
    /// Index into the department table.
    pub(crate) dept: usize,
    /// `department`.
    pub department: &'static str,
    /// `cost_center`.
    pub cost_center: String,
    /// `title`.
    pub title: String,
    /// `location`.
    pub location: &'static str,
    /// `idp_groups`.
    pub idp_groups: Vec<String>,
}

impl Person {
    /// The value of a string attribute.
    pub fn attr(&self, attr: Attr) -> &str {
        match attr {
            Attr::Department => self.department,
            Attr::CostCenter => &self.cost_center,
            Attr::Title => &self.title,
            Attr::Location => self.location,
        }
    }
}

/// The cost centers of department `dept`: `CC-<dept><k>`.
pub(crate) fn cost_center(dept: usize, k: u64) -> String {
    format!("CC-{}{:02}", 10 + dept, k)
}

/// How many cost centers department `dept` has.
pub(crate) fn cost_centers_of(dept: usize) -> u64 {
    3 + (dept as u64 * 7) % 5
}

/// How many team IdP groups department `dept` has.
fn teams_of(dept: usize) -> u64 {
    2 + (dept as u64 * 5) % 4
}

/// Draws `n` people.
pub fn people(rng: &mut Rng, n: usize) -> Vec<Person> {
    let dept_total: u32 = DEPARTMENTS.iter().map(|d| d.1).sum();
    let level_total: u32 = LEVELS.iter().map(|l| l.1).sum();
    (0..n)
        .map(|i| {
            let dept = weighted(rng, &DEPARTMENTS.map(|d| d.1), dept_total);
            let (department, _, slug, _) = DEPARTMENTS[dept];
            let level = LEVELS[weighted(rng, &LEVELS.map(|l| l.1), level_total)].0;
            let role = rng.pick(ROLES[dept]).copied().unwrap_or("Specialist");
            let title = match level {
                "" => role.to_string(),
                "Director" | "VP" => format!("{level}, {department}"),
                _ => format!("{level} {role}"),
            };
            let (location, region) = LOCATIONS[rng.index(LOCATIONS.len())];
            let mut groups = Vec::with_capacity(6);
            if rng.chance(0.85) {
                groups.push(format!("{slug}-all"));
            }
            groups.push(format!("{slug}-team-{}", rng.below(teams_of(dept)) + 1));
            if rng.chance(0.6) {
                groups.push(region.to_string());
            }
            if rng.chance(if dept == 0 { 0.35 } else { 0.08 }) {
                groups.push("codex-beta".into());
            }
            if rng.chance(0.05) {
                groups.push("gpt5-pro-access".into());
            }
            if rng.chance(0.05) {
                groups.push("contractors".into());
            }
            if matches!(level, "Director" | "VP") || rng.chance(0.06) {
                groups.push("managers".into());
            }
            let first = FIRST[rng.index(FIRST.len())];
            let last = LAST[rng.index(LAST.len())];
            Person {
                email: format!("{first}.{last}{i}@{DOMAIN}"),
                dept,
                department,
                cost_center: cost_center(dept, rng.below(cost_centers_of(dept)) + 1),
                title,
                location,
                idp_groups: groups,
            }
        })
        .collect()
}

/// Draws an index with probability proportional to `weights`.
pub(crate) fn weighted(rng: &mut Rng, weights: &[u32], total: u32) -> usize {
    let mut x = rng.below(u64::from(total)) as u32;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// A string attribute a predicate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// `user.department`.
    Department,
    /// `user.cost_center`.
    CostCenter,
    /// `user.title`.
    Title,
    /// `user.location`.
    Location,
}

impl Attr {
    /// The attribute's name.
    pub fn name(self) -> &'static str {
        match self {
            Attr::Department => "department",
            Attr::CostCenter => "cost_center",
            Attr::Title => "title",
            Attr::Location => "location",
        }
    }
}

/// A group selector as a tree, written out as CEL and evaluated directly.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `user.a == "v"`.
    Eq(Attr, String),
    /// `user.a in ["v", …]`.
    In(Attr, Vec<String>),
    /// `user.a.startsWith("v")`.
    StartsWith(Attr, String),
    /// `"g" in user.idp_groups`.
    InGroups(String),
    /// `a && b`.
    And(Box<Predicate>, Box<Predicate>),
    /// `a || b`.
    Or(Box<Predicate>, Box<Predicate>),
    /// `!a`.
    Not(Box<Predicate>),
    /// `size(user.idp_groups) > n`.
    GroupsMoreThan(usize),
    /// `user.a.matches("^(p1|p2) ")`: the value starts with one of the words, then a space.
    MatchesWords(Attr, Vec<String>),
    /// `user.a.contains("v")`.
    Contains(Attr, String),
    /// `user.idp_groups.exists(g, g.startsWith("p"))`.
    AnyGroupStartsWith(String),
}

impl Predicate {
    /// True when only the common operators (`==`, `in`, `startsWith`, `&&`, `||`, `!`) appear.
    pub fn is_simple(&self) -> bool {
        match self {
            Predicate::Eq(..) | Predicate::In(..) | Predicate::StartsWith(..) | Predicate::InGroups(_) => {
                true
            }
            Predicate::And(a, b) | Predicate::Or(a, b) => a.is_simple() && b.is_simple(),
            Predicate::Not(a) => a.is_simple(),
            Predicate::GroupsMoreThan(_)
            | Predicate::MatchesWords(..)
            | Predicate::Contains(..)
            | Predicate::AnyGroupStartsWith(_) => false,
        }
    }

    /// Evaluates the predicate for one person, as CEL would.
    pub fn eval(&self, p: &Person) -> bool {
        match self {
            Predicate::Eq(a, v) => p.attr(*a) == v,
            Predicate::In(a, vs) => vs.iter().any(|v| v == p.attr(*a)),
            Predicate::StartsWith(a, v) => p.attr(*a).starts_with(v.as_str()),
            Predicate::InGroups(g) => p.idp_groups.iter().any(|x| x == g),
            Predicate::And(a, b) => a.eval(p) && b.eval(p),
            Predicate::Or(a, b) => a.eval(p) || b.eval(p),
            Predicate::Not(a) => !a.eval(p),
            Predicate::GroupsMoreThan(n) => p.idp_groups.len() > *n,
            Predicate::MatchesWords(a, words) => {
                let v = p.attr(*a);
                words.iter().any(|w| v.strip_prefix(w.as_str()).is_some_and(|rest| rest.starts_with(' ')))
            }
            Predicate::Contains(a, v) => p.attr(*a).contains(v.as_str()),
            Predicate::AnyGroupStartsWith(prefix) => {
                p.idp_groups.iter().any(|g| g.starts_with(prefix.as_str()))
            }
        }
    }

    /// The predicate as a CEL expression over `user.*`.
    pub fn to_cel(&self) -> String {
        let mut out = String::new();
        self.write_cel(&mut out);
        out
    }

    fn write_cel(&self, out: &mut String) {
        match self {
            Predicate::Eq(a, v) => {
                let _ = write!(out, "user.{} == {}", a.name(), quoted(v));
            }
            Predicate::In(a, vs) => {
                let list: Vec<String> = vs.iter().map(|v| quoted(v)).collect();
                let _ = write!(out, "user.{} in [{}]", a.name(), list.join(", "));
            }
            Predicate::StartsWith(a, v) => {
                let _ = write!(out, "user.{}.startsWith({})", a.name(), quoted(v));
            }
            Predicate::InGroups(g) => {
                let _ = write!(out, "{} in user.idp_groups", quoted(g));
            }
            Predicate::And(a, b) => {
                a.write_operand(out, true);
                out.push_str(" && ");
                b.write_operand(out, true);
            }
            Predicate::Or(a, b) => {
                a.write_operand(out, false);
                out.push_str(" || ");
                b.write_operand(out, false);
            }
            Predicate::Not(a) => {
                out.push('!');
                if a.is_call() {
                    a.write_cel(out);
                } else {
                    out.push('(');
                    a.write_cel(out);
                    out.push(')');
                }
            }
            Predicate::GroupsMoreThan(n) => {
                let _ = write!(out, "size(user.idp_groups) > {n}");
            }
            Predicate::MatchesWords(a, words) => {
                let _ =
                    write!(out, "user.{}.matches({})", a.name(), quoted(&format!("^({}) ", words.join("|"))));
            }
            Predicate::Contains(a, v) => {
                let _ = write!(out, "user.{}.contains({})", a.name(), quoted(v));
            }
            Predicate::AnyGroupStartsWith(prefix) => {
                let _ = write!(out, "user.idp_groups.exists(g, g.startsWith({}))", quoted(prefix));
            }
        }
    }

    /// Writes an operand of `&&` (`in_and`) or `||`, in parentheses when the other
    /// operator would otherwise bind it differently or a reader could misread it.
    fn write_operand(&self, out: &mut String, in_and: bool) {
        let wrap = matches!((self, in_and), (Predicate::Or(..), true) | (Predicate::And(..), false));
        if wrap {
            out.push('(');
        }
        self.write_cel(out);
        if wrap {
            out.push(')');
        }
    }

    /// True for member calls, which bind tighter than `!`.
    fn is_call(&self) -> bool {
        matches!(
            self,
            Predicate::StartsWith(..)
                | Predicate::MatchesWords(..)
                | Predicate::Contains(..)
                | Predicate::AnyGroupStartsWith(_)
        )
    }
}

/// A CEL string literal (the generator's values never hold quotes or backslashes).
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One group rule as generated: name, selector and who it lists.
#[derive(Debug, Clone)]
pub struct GroupRule {
    /// Unique name.
    pub name: String,
    /// For people.
    pub description: String,
    /// The selector.
    pub predicate: Predicate,
    /// Unique priority.
    pub priority: i64,
    /// Explicit members (indexes into the people).
    pub members: Vec<usize>,
    /// Excluded people (indexes).
    pub exclude: Vec<usize>,
    /// Owning department's slug (for `owners`).
    pub owner: &'static str,
}

impl GroupRule {
    /// Whether person `i` is in the group.
    pub fn contains(&self, i: usize, p: &Person) -> bool {
        self.members.contains(&i) || (!self.exclude.contains(&i) && self.predicate.eval(p))
    }
}

/// Draws `n` group rules over `people` (about one in ten uses an operator outside the common set).
pub fn groups(rng: &mut Rng, n: usize, people: &[Person]) -> Vec<GroupRule> {
    let dept_total: u32 = DEPARTMENTS.iter().map(|d| d.1).sum();
    let mut priorities: Vec<i64> = (1..=n as i64).map(|p| p * 10).collect();
    rng.shuffle(&mut priorities);
    let mut out = Vec::with_capacity(n);
    for (i, priority) in priorities.into_iter().enumerate() {
        let dept = weighted(rng, &DEPARTMENTS.map(|d| d.1), dept_total);
        let (department, _, slug, _) = DEPARTMENTS[dept];
        let (tag, description, predicate) =
            if rng.chance(0.1) { complex(rng, dept) } else { simple(rng, dept) };
        let mut members = Vec::new();
        let mut exclude = Vec::new();
        if !people.is_empty() {
            if rng.chance(0.15) {
                for _ in 0..rng.range(1, 3) {
                    members.push(rng.index(people.len()));
                }
            }
            if rng.chance(0.1) {
                for _ in 0..rng.range(1, 2) {
                    exclude.push(rng.index(people.len()));
                }
            }
            members.sort_unstable();
            members.dedup();
            exclude.sort_unstable();
            exclude.dedup();
            exclude.retain(|e| !members.contains(e));
        }
        out.push(GroupRule {
            name: format!("{slug}-{tag}-{:04}", i + 1),
            description: format!("{department}: {description}"),
            predicate,
            priority,
            members,
            exclude,
            owner: slug,
        });
    }
    out
}

fn eq(a: Attr, v: impl Into<String>) -> Predicate {
    Predicate::Eq(a, v.into())
}

fn and(a: Predicate, b: Predicate) -> Predicate {
    Predicate::And(Box::new(a), Box::new(b))
}

fn or(a: Predicate, b: Predicate) -> Predicate {
    Predicate::Or(Box::new(a), Box::new(b))
}

fn not(a: Predicate) -> Predicate {
    Predicate::Not(Box::new(a))
}

/// A selector using only the common operators.
fn simple(rng: &mut Rng, dept: usize) -> (String, String, Predicate) {
    let (department, _, slug, _) = DEPARTMENTS[dept];
    let dept_eq = || eq(Attr::Department, department);
    let (location, region) = LOCATIONS[rng.index(LOCATIONS.len())];
    let cc = |rng: &mut Rng| cost_center(dept, rng.below(cost_centers_of(dept)) + 1);
    match rng.below(9) {
        0 => ("all".into(), "everyone in the department".into(), dept_eq()),
        1 => (
            location.to_ascii_lowercase().replace(' ', "-"),
            format!("the department in {location}"),
            and(dept_eq(), eq(Attr::Location, location)),
        ),
        2 => {
            let mut ccs = vec![cc(rng), cc(rng)];
            ccs.sort();
            ccs.dedup();
            (
                "cost-centers".into(),
                format!("cost centers {}", ccs.join(", ")),
                Predicate::In(Attr::CostCenter, ccs),
            )
        }
        3 => {
            let level = *rng.pick(&["Senior", "Staff", "Principal", "Associate"]).unwrap_or(&"Senior");
            (
                level.to_ascii_lowercase(),
                format!("{level} titles"),
                and(dept_eq(), Predicate::StartsWith(Attr::Title, level.into())),
            )
        }
        4 => {
            let team = format!("{slug}-team-{}", rng.below(teams_of(dept)) + 1);
            ("team".into(), format!("members of `{team}`"), Predicate::InGroups(team))
        }
        5 => (
            "employees".into(),
            "the department without interns".into(),
            and(dept_eq(), not(Predicate::StartsWith(Attr::Title, "Intern".into()))),
        ),
        6 => {
            let other = DEPARTMENTS[rng.index(DEPARTMENTS.len())].0;
            (
                format!("{region}-pair"),
                format!("{department} and {other} in {region}"),
                and(or(dept_eq(), eq(Attr::Department, other)), Predicate::InGroups(region.into())),
            )
        }
        7 => {
            let (other, _) = LOCATIONS[rng.index(LOCATIONS.len())];
            let mut places = vec![location.to_string(), other.to_string()];
            places.sort();
            places.dedup();
            (
                "codex-beta".into(),
                "Codex beta testers in some offices".into(),
                and(Predicate::In(Attr::Location, places), Predicate::InGroups("codex-beta".into())),
            )
        }
        _ => (
            "staff".into(),
            "one cost center, contractors excluded".into(),
            and(eq(Attr::CostCenter, cc(rng)), not(Predicate::InGroups("contractors".into()))),
        ),
    }
}

/// A selector that needs the interpreter: functions and macros outside the common set.
fn complex(rng: &mut Rng, dept: usize) -> (String, String, Predicate) {
    let (department, _, slug, _) = DEPARTMENTS[dept];
    match rng.below(4) {
        0 => (
            "many-groups".into(),
            "people in many IdP groups".into(),
            and(Predicate::GroupsMoreThan(3), eq(Attr::Department, department)),
        ),
        1 => (
            "senior-ic".into(),
            "Staff and Principal individual contributors".into(),
            and(
                Predicate::MatchesWords(Attr::Title, vec!["Staff".into(), "Principal".into()]),
                eq(Attr::Department, department),
            ),
        ),
        2 => {
            let (location, _) = LOCATIONS[rng.index(LOCATIONS.len())];
            (
                format!("{}-engineers", location.to_ascii_lowercase().replace(' ', "-")),
                format!("anyone with `Engineer` in their title in {location}"),
                and(Predicate::Contains(Attr::Title, "Engineer".into()), eq(Attr::Location, location)),
            )
        }
        _ => (
            "teams".into(),
            "anyone in one of the department's teams".into(),
            Predicate::AnyGroupStartsWith(format!("{slug}-team-")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> Person {
        Person {
            email: "a@acme.example".into(),
            dept: 0,
            department: "Engineering",
            cost_center: "CC-1001".into(),
            title: "Staff Software Engineer".into(),
            location: "New York",
            idp_groups: vec!["engineering-all".into(), "codex-beta".into()],
        }
    }

    #[test]
    fn cel_text_keeps_precedence() {
        let p = and(
            or(eq(Attr::Department, "Sales"), eq(Attr::Department, "Data")),
            not(eq(Attr::Location, "Berlin")),
        );
        assert_eq!(
            p.to_cel(),
            r#"(user.department == "Sales" || user.department == "Data") && !(user.location == "Berlin")"#
        );
        let q = not(Predicate::StartsWith(Attr::Title, "Intern".into()));
        assert_eq!(q.to_cel(), r#"!user.title.startsWith("Intern")"#);
        let m = Predicate::MatchesWords(Attr::Title, vec!["Staff".into(), "Principal".into()]);
        assert_eq!(m.to_cel(), r#"user.title.matches("^(Staff|Principal) ")"#);
    }

    #[test]
    fn predicates_evaluate_like_cel() {
        let p = person();
        assert!(eq(Attr::Department, "Engineering").eval(&p));
        assert!(Predicate::InGroups("codex-beta".into()).eval(&p));
        assert!(!Predicate::GroupsMoreThan(2).eval(&p));
        assert!(Predicate::MatchesWords(Attr::Title, vec!["Staff".into()]).eval(&p));
        assert!(!Predicate::MatchesWords(Attr::Title, vec!["Sta".into()]).eval(&p));
        assert!(Predicate::Contains(Attr::Title, "Engineer".into()).eval(&p));
        assert!(!Predicate::Contains(Attr::Title, "engineer".into()).eval(&p));
        assert!(Predicate::AnyGroupStartsWith("engineering-".into()).eval(&p));
        assert!(!not(Predicate::StartsWith(Attr::Title, "Staff".into())).eval(&p));
    }

    #[test]
    fn about_one_in_ten_selectors_needs_the_interpreter() {
        let mut rng = Rng::new(3, 0);
        let people = people(&mut rng, 50);
        let groups = groups(&mut rng, 1000, &people);
        let complex = groups.iter().filter(|g| !g.predicate.is_simple()).count();
        assert!((50..=150).contains(&complex), "{complex}");
        let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 1000);
    }
}

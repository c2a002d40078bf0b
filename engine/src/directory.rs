//! The directory: the users a workspace knows and their attributes.
//!
//! Attributes are typed as the `Workspace` declares them. Reading CSV and JSON
//! Lines lives in [`crate::input`]; this module is the in-memory shape every
//! stage shares. Users are keyed by their canonical email ([`crate::identity`]):
//! lookups by any spelling of an address find the same user.

use std::collections::BTreeMap;

use crate::FastMap;
use crate::model::AttributeType;

/// One attribute value of a user.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Absent or empty in the directory.
    Missing,
    /// A string attribute.
    String(String),
    /// A list attribute (`idp_groups`).
    List(Vec<String>),
    /// A number attribute.
    Number(f64),
    /// A boolean attribute.
    Bool(bool),
}

/// One user of the directory.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The user's canonical email ([`crate::identity::canonical_email`]), the key everywhere.
    pub email: String,
    /// Attribute values, in the order of [`Directory::attributes`].
    pub attrs: Vec<AttrValue>,
}

/// What [`Directory::lookup`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The user at this position.
    Found(usize),
    /// Nobody by that email; the email of a near miss, when there is one.
    Missing {
        /// The directory's email closest to the one written.
        suggestion: Option<&'a str>,
    },
}

/// Every user, with attributes typed as declared.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Declared attribute names and types, in a fixed order (sorted by name).
    pub attributes: Vec<(String, AttributeType)>,
    /// The users, in input order.
    pub users: Vec<User>,
    /// Email to position. foldhash instead of SipHash: the directory is the admin's own
    /// file, and hashing 100k emails (plus every lookup by email) is a visible part of
    /// each command that reads it.
    index: FastMap<String, usize>,
}

impl Directory {
    /// An empty directory with these declared attributes.
    pub fn new(attributes: &BTreeMap<String, AttributeType>) -> Self {
        Directory {
            attributes: attributes.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            users: Vec::new(),
            index: FastMap::default(),
        }
    }

    /// The users at `positions`, in that order, with the same attributes (positions
    /// past the end are skipped). Sized once: no growing and rehashing on the way.
    pub fn subset(&self, positions: &[usize]) -> Directory {
        let mut sub = Directory {
            attributes: self.attributes.clone(),
            users: Vec::with_capacity(positions.len()),
            index: FastMap::with_capacity_and_hasher(positions.len(), Default::default()),
        };
        for &i in positions {
            if let Some(u) = self.users.get(i) {
                sub.push(u.clone());
            }
        }
        sub
    }

    /// Adds a user; returns false (and changes nothing) when the email is already present.
    pub fn push(&mut self, user: User) -> bool {
        if self.index.contains_key(&user.email) {
            return false;
        }
        self.index.insert(user.email.clone(), self.users.len());
        self.users.push(user);
        true
    }

    /// The position of a user by email, written in any spelling of it (`Zoe@` finds `zoe@`).
    pub fn position(&self, email: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(email) {
            return Some(i);
        }
        // Only a miss pays for normalising: keys read from the directory are canonical.
        let canonical = crate::identity::canonical(email).ok()?;
        self.index.get(&*canonical).copied()
    }

    /// A user by email.
    pub fn get(&self, email: &str) -> Option<&User> {
        self.position(email).map(|i| &self.users[i])
    }

    /// Looks up a person named in a policy or on the command line: their position, or
    /// the email they most likely meant.
    ///
    /// The one place where a written email is matched against the directory for a
    /// finding or a refusal, so every such check agrees on what "in the directory" means.
    pub fn lookup(&self, email: &str) -> Lookup<'_> {
        if let Some(i) = self.position(email) {
            return Lookup::Found(i);
        }
        // Keys are canonical: measure from the canonical spelling when there is one (any
        // other spelling of a directory email was found above).
        let canonical = crate::identity::canonical(email).ok();
        let email: &str = canonical.as_deref().unwrap_or(email);
        // As close as `diag::did_you_mean` asks (a third of the length), but with a bounded
        // distance: a full one against each of 100k emails took seconds per miss.
        let mut limit = (email.chars().count() / 3).max(1);
        let mut best: Option<(usize, &str)> = None;
        let mut rows = (Vec::new(), Vec::new());
        for u in &self.users {
            let Some(d) = distance_within(email.as_bytes(), u.email.as_bytes(), limit, &mut rows) else {
                continue;
            };
            if best.is_none_or(|b| (d, u.email.as_str()) < b) {
                best = Some((d, &u.email));
                limit = d;
            }
        }
        Lookup::Missing { suggestion: best.map(|(_, e)| e) }
    }

    /// The position of an attribute by name.
    pub fn attribute(&self, name: &str) -> Option<usize> {
        self.attributes.iter().position(|(n, _)| n == name)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there is no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The edit distance between two byte strings, when it is at most `limit`.
///
/// Only the diagonal band `limit` wide is computed, and a row whose every cell is
/// over the limit ends the search: most emails differ from the one looked for
/// within a few characters. `rows` are buffers reused across calls.
fn distance_within(a: &[u8], b: &[u8], limit: usize, rows: &mut (Vec<usize>, Vec<usize>)) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let over = limit + 1;
    let (prev, cur) = rows;
    prev.clear();
    prev.extend((0..=b.len()).map(|j| j.min(over)));
    cur.clear();
    cur.resize(b.len() + 1, over);
    for (i, &x) in a.iter().enumerate() {
        let row = i + 1;
        cur.fill(over);
        cur[0] = row.min(over);
        let mut least = cur[0];
        for j in row.saturating_sub(limit).max(1)..=(row + limit).min(b.len()) {
            let substitute = prev[j - 1] + usize::from(x != b[j - 1]);
            let value = substitute.min(prev[j] + 1).min(cur[j - 1] + 1).min(over);
            cur[j] = value;
            least = least.min(value);
        }
        if least > limit {
            return None;
        }
        std::mem::swap(prev, cur);
    }
    prev.get(b.len()).copied().filter(|d| *d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounded_distance_agrees_with_the_full_one() {
        let words =
            ["", "a", "ab", "ba", "abc", "alice@acme.com", "alcie@acme.com", "alice@acme.co", "bob@acme.com"];
        let mut rows = (Vec::new(), Vec::new());
        for a in words {
            for b in words {
                let full = crate::diag::levenshtein(a, b);
                for limit in 0..6 {
                    let bounded = distance_within(a.as_bytes(), b.as_bytes(), limit, &mut rows);
                    assert_eq!(bounded, (full <= limit).then_some(full), "{a:?} {b:?} {limit}");
                }
            }
        }
    }

    #[test]
    fn lookup_suggests_the_nearest_email() {
        let mut dir = Directory::new(&BTreeMap::new());
        for email in ["alice@acme.com", "alicia@acme.com", "bob@acme.com"] {
            dir.push(User { email: email.into(), attrs: Vec::new() });
        }
        assert_eq!(dir.lookup("bob@acme.com"), Lookup::Found(2));
        assert_eq!(dir.lookup("BOB@acme.com"), Lookup::Found(2));
        assert_eq!(dir.lookup("Bobb@Acme.com"), Lookup::Missing { suggestion: Some("bob@acme.com") });
        assert_eq!(dir.lookup("alcie@acme.com"), Lookup::Missing { suggestion: Some("alice@acme.com") });
        assert_eq!(dir.lookup("zed@example.org"), Lookup::Missing { suggestion: None });
    }
}

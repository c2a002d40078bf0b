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
        let emails = || self.users.iter().map(|u| u.email.as_str());
        // A different case first (the commonest slip), else the nearest by edit distance.
        let suggestion = emails()
            .find(|e| e.eq_ignore_ascii_case(email))
            .or_else(|| crate::diag::did_you_mean(email, emails()));
        Lookup::Missing { suggestion }
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

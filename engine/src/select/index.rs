//! Columns of a directory with interned values, built once and shared by every selector.
//!
//! Each attribute (and `email`) becomes a column of small integer ids, one per user,
//! so that a test such as `user.department == "Sales"` is decided once per distinct
//! value and then spread over the users by a scan of integers. Columns are built on
//! first use: a directory's unused attributes cost nothing.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::bits::Bitset;
use crate::FastMap;
use crate::directory::{AttrValue, Directory};

/// One distinct value of a column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Distinct<'d> {
    Missing,
    String(&'d str),
    /// The element ids of a list, in order (see [`Column::element`]).
    List(Vec<u32>),
    Number(f64),
    Bool(bool),
}

/// One attribute's values: an id per user and the distinct value behind each id.
#[derive(Debug)]
pub(crate) struct Column<'d> {
    /// The value id of each user; id 0 is always [`Distinct::Missing`].
    pub(crate) ids: Vec<u32>,
    /// The distinct values, by id.
    pub(crate) values: Vec<Distinct<'d>>,
    strings: FastMap<&'d str, u32>,
    elements: FastMap<&'d str, u32>,
    /// The list elements, by element id.
    pub(crate) element_names: Vec<&'d str>,
    /// Per value id, the users with that value (built on first use, for columns
    /// with few distinct values).
    postings: OnceLock<Option<Vec<Bitset>>>,
    /// Per element id, the users whose list holds it, and the users whose value is
    /// no list (built on first use).
    element_postings: OnceLock<Option<(Vec<Bitset>, Bitset)>>,
}

/// The most distinct values (or list elements) a column keeps a bitset for each:
/// past this, a scan of the ids is about as fast and the bitsets would take
/// `values × users / 8` bytes.
const MAX_POSTINGS: usize = 512;

/// Interns one column's values as they come, user by user.
struct Builder<'d> {
    col: Column<'d>,
    lists: FastMap<Vec<u32>, u32>,
    numbers: FastMap<u64, u32>,
    bools: [Option<u32>; 2],
    scratch: Vec<u32>,
}

impl<'d> Builder<'d> {
    fn new(len: usize) -> Self {
        Builder {
            col: Column {
                ids: Vec::with_capacity(len),
                values: vec![Distinct::Missing],
                strings: FastMap::default(),
                elements: FastMap::default(),
                element_names: Vec::new(),
                postings: OnceLock::new(),
                element_postings: OnceLock::new(),
            },
            lists: FastMap::default(),
            numbers: FastMap::default(),
            bools: [None, None],
            scratch: Vec::new(),
        }
    }

    /// Adds the next user's value.
    fn push(&mut self, value: Option<&'d AttrValue>) {
        let next = self.col.values.len() as u32;
        let id = match value {
            None | Some(AttrValue::Missing) => 0,
            Some(AttrValue::String(s)) => *self.col.strings.entry(s.as_str()).or_insert_with(|| {
                self.col.values.push(Distinct::String(s.as_str()));
                next
            }),
            Some(AttrValue::List(items)) => {
                // Most lists repeat: allocate only for a new one.
                self.scratch.clear();
                for item in items {
                    let n = self.col.element_names.len() as u32;
                    self.scratch.push(*self.col.elements.entry(item.as_str()).or_insert_with(|| {
                        self.col.element_names.push(item.as_str());
                        n
                    }));
                }
                match self.lists.get(self.scratch.as_slice()) {
                    Some(id) => *id,
                    None => {
                        self.lists.insert(self.scratch.clone(), next);
                        self.col.values.push(Distinct::List(self.scratch.clone()));
                        next
                    }
                }
            }
            Some(AttrValue::Number(n)) => *self.numbers.entry(n.to_bits()).or_insert_with(|| {
                self.col.values.push(Distinct::Number(*n));
                next
            }),
            Some(AttrValue::Bool(b)) => *self.bools[usize::from(*b)].get_or_insert_with(|| {
                self.col.values.push(Distinct::Bool(*b));
                next
            }),
        };
        self.col.ids.push(id);
    }
}

impl<'d> Column<'d> {
    fn build(values: impl Iterator<Item = Option<&'d AttrValue>>, len: usize) -> Column<'d> {
        let mut builder = Builder::new(len);
        for value in values {
            builder.push(value);
        }
        builder.col
    }

    /// The users having each value id, when the column has few distinct values.
    pub(crate) fn postings(&self) -> Option<&[Bitset]> {
        self.postings
            .get_or_init(|| {
                (self.values.len() <= MAX_POSTINGS).then(|| {
                    let mut sets = vec![Bitset::new(self.ids.len()); self.values.len()];
                    for (user, &id) in self.ids.iter().enumerate() {
                        if let Some(set) = sets.get_mut(id as usize) {
                            set.insert(user);
                        }
                    }
                    sets
                })
            })
            .as_deref()
    }

    /// The users whose list holds each element id, and those whose value is no list
    /// (missing included), when there are few distinct elements.
    pub(crate) fn element_postings(&self) -> Option<(&[Bitset], &Bitset)> {
        self.element_postings
            .get_or_init(|| {
                (self.element_names.len() <= MAX_POSTINGS).then(|| {
                    let mut sets = vec![Bitset::new(self.ids.len()); self.element_names.len()];
                    let mut non_lists = Bitset::new(self.ids.len());
                    for (user, &id) in self.ids.iter().enumerate() {
                        match self.values.get(id as usize) {
                            Some(Distinct::List(items)) => {
                                for &e in items {
                                    if let Some(set) = sets.get_mut(e as usize) {
                                        set.insert(user);
                                    }
                                }
                            }
                            _ => non_lists.insert(user),
                        }
                    }
                    (sets, non_lists)
                })
            })
            .as_ref()
            .map(|(sets, non_lists)| (sets.as_slice(), non_lists))
    }

    /// The id of the string value `s`, if some user has it.
    pub(crate) fn string(&self, s: &str) -> Option<u32> {
        self.strings.get(s).copied()
    }

    /// The element id of `s`, if some user's list holds it.
    pub(crate) fn element(&self, s: &str) -> Option<u32> {
        self.elements.get(s).copied()
    }
}

/// The columns of one directory, built on first use and shared by every selector.
///
/// Build one per directory and pass it to [`Selector::matches_in`](super::Selector::matches_in)
/// for each selector: interning a column costs about as much as one scan of the
/// users, and is then shared.
#[derive(Debug)]
pub struct DirectoryIndex<'d> {
    dir: &'d Directory,
    /// Attribute positions by name; `email` is not among them.
    attributes: HashMap<&'d str, usize>,
    email: OnceLock<Column<'d>>,
    columns: Vec<OnceLock<Column<'d>>>,
}

impl<'d> DirectoryIndex<'d> {
    /// An index over `dir`; no column is built yet.
    pub fn new(dir: &'d Directory) -> Self {
        let attributes = dir
            .attributes
            .iter()
            .enumerate()
            .filter(|(_, (name, _))| name != "email")
            .map(|(i, (name, _))| (name.as_str(), i))
            .collect();
        DirectoryIndex {
            dir,
            attributes,
            email: OnceLock::new(),
            columns: dir.attributes.iter().map(|_| OnceLock::new()).collect(),
        }
    }

    /// The directory indexed.
    pub fn directory(&self) -> &'d Directory {
        self.dir
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.dir.users.len()
    }

    /// True when the directory has no user.
    pub fn is_empty(&self) -> bool {
        self.dir.users.is_empty()
    }

    /// Builds the columns of these attributes not built yet, in one pass over the users.
    pub(crate) fn prepare<'n>(&self, names: impl IntoIterator<Item = &'n str>) {
        let mut positions: Vec<usize> = names
            .into_iter()
            .filter_map(|n| self.attributes.get(n).copied())
            .filter(|&p| self.columns.get(p).is_some_and(|c| c.get().is_none()))
            .collect();
        positions.sort_unstable();
        positions.dedup();
        if positions.len() < 2 {
            return;
        }
        let len = self.dir.users.len();
        let mut builders: Vec<Builder<'d>> = positions.iter().map(|_| Builder::new(len)).collect();
        for user in &self.dir.users {
            for (b, &p) in builders.iter_mut().zip(&positions) {
                b.push(user.attrs.get(p));
            }
        }
        for (b, p) in builders.into_iter().zip(positions) {
            if let Some(cell) = self.columns.get(p) {
                // Another thread may have built it meanwhile: either is the same column.
                let _ = cell.set(b.col);
            }
        }
    }

    /// The column of `user.<name>`; `None` when the directory has no such attribute
    /// (every user then lacks it).
    pub(crate) fn column(&self, name: &str) -> Option<&Column<'d>> {
        let dir = self.dir;
        if name == "email" {
            return Some(self.email.get_or_init(|| {
                // An email is never empty in a loaded directory, but is a present
                // string either way: `user.email` always exists.
                let mut col = Column::build(std::iter::empty(), dir.users.len());
                for user in &dir.users {
                    let next = col.values.len() as u32;
                    let s = user.email.as_str();
                    let id = *col.strings.entry(s).or_insert_with(|| {
                        col.values.push(Distinct::String(s));
                        next
                    });
                    col.ids.push(id);
                }
                col
            }));
        }
        let &pos = self.attributes.get(name)?;
        let cell = self.columns.get(pos)?;
        Some(cell.get_or_init(|| Column::build(dir.users.iter().map(|u| u.attrs.get(pos)), dir.users.len())))
    }
}

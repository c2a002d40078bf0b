//! Bitsets over the users of a directory, and the three-valued results selectors combine.
//!
//! A selector evaluates to true, false or an error for each user. [`Tri`] keeps that as
//! two bitsets (true, error; false is neither) so that `&&`, `||`, `!` and `?:` are
//! word-wise operations over 64 users at a time.

/// A set of user positions, one bit each, in directory order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// An empty set over `len` users.
    pub fn new(len: usize) -> Self {
        Bitset { words: vec![0; len.div_ceil(64)], len }
    }

    /// The full set over `len` users.
    pub fn full(len: usize) -> Self {
        let mut set = Bitset { words: vec![!0; len.div_ceil(64)], len };
        set.clear_tail();
        set
    }

    /// Number of users the set ranges over (not the number of members).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the set ranges over no user.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The words, 64 users each, lowest bit first; bits past `len` are zero.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Whether user `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// Adds user `i` (ignored when out of range).
    pub fn insert(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] |= 1 << (i % 64);
        }
    }

    /// Adds every member of `other` (a set over as many users).
    pub(crate) fn union_with(&mut self, other: &Bitset) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Number of members.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The members, in increasing order.
    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + bit)
            })
        })
    }

    /// Zeroes the bits past `len` in the last word, which word-wise negation sets.
    pub(crate) fn clear_tail(&mut self) {
        let rem = self.len % 64;
        if rem != 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= (1u64 << rem) - 1;
        }
    }
}

/// The three-valued outcome of a boolean expression for every user.
///
/// `t` holds the users for whom it is true, `e` those for whom evaluation failed
/// (an error, or a value that is not a bool); the rest are false. The two never
/// overlap, and bits past the user count are zero in both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tri {
    pub(crate) t: Bitset,
    pub(crate) e: Bitset,
}

impl Tri {
    /// The same verdict for every user.
    pub(crate) fn constant(len: usize, verdict: Verdict) -> Self {
        match verdict {
            Verdict::True => Tri { t: Bitset::full(len), e: Bitset::new(len) },
            Verdict::False => Tri { t: Bitset::new(len), e: Bitset::new(len) },
            Verdict::Error => Tri { t: Bitset::new(len), e: Bitset::full(len) },
        }
    }

    /// CEL's `&&`: false wins over an error, an error over true.
    pub(crate) fn and(mut self, other: &Tri) -> Tri {
        let (ta, ea) = (self.t.words_mut(), self.e.words_mut());
        for (i, (ta, ea)) in ta.iter_mut().zip(ea.iter_mut()).enumerate() {
            let (tb, eb) = (other.t.words[i], other.e.words[i]);
            let falses = !(*ta | *ea) | !(tb | eb);
            let t = *ta & tb;
            *ta = t;
            *ea = !(t | falses);
        }
        self.e.clear_tail();
        self
    }

    /// CEL's `||`: true wins over an error, an error over false.
    pub(crate) fn or(mut self, other: &Tri) -> Tri {
        let (ta, ea) = (self.t.words_mut(), self.e.words_mut());
        for (i, (ta, ea)) in ta.iter_mut().zip(ea.iter_mut()).enumerate() {
            let (tb, eb) = (other.t.words[i], other.e.words[i]);
            let t = *ta | tb;
            let falses = !(*ta | *ea) & !(tb | eb);
            *ta = t;
            *ea = !(t | falses);
        }
        self.e.clear_tail();
        self
    }

    /// CEL's `!`: an error stays an error.
    pub(crate) fn not(mut self) -> Tri {
        let (t, e) = (self.t.words_mut(), self.e.words_mut());
        for (t, e) in t.iter_mut().zip(e.iter()) {
            *t = !(*t | *e);
        }
        self.t.clear_tail();
        self
    }

    /// CEL's `c ? a : b` where both branches are used as booleans: an erroring
    /// condition is an error, otherwise the chosen branch decides.
    pub(crate) fn cond(self, a: &Tri, b: &Tri) -> Tri {
        let Tri { t: mut tc, e: mut ec } = self;
        let (tcw, ecw) = (tc.words_mut(), ec.words_mut());
        for (i, (tc, ec)) in tcw.iter_mut().zip(ecw.iter_mut()).enumerate() {
            let fc = !(*tc | *ec);
            let t = (*tc & a.t.words[i]) | (fc & b.t.words[i]);
            let e = *ec | (*tc & a.e.words[i]) | (fc & b.e.words[i]);
            *tc = t;
            *ec = e;
        }
        tc.clear_tail();
        ec.clear_tail();
        Tri { t: tc, e: ec }
    }
}

/// One user's outcome of a boolean expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Verdict {
    False = 0,
    True = 1,
    Error = 2,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tri(len: usize, verdicts: &[Verdict]) -> Tri {
        let mut out = Tri::constant(len, Verdict::False);
        for (i, v) in verdicts.iter().enumerate() {
            match v {
                Verdict::True => out.t.insert(i),
                Verdict::Error => out.e.insert(i),
                Verdict::False => {}
            }
        }
        out
    }

    fn verdict(t: &Tri, i: usize) -> Verdict {
        if t.t.contains(i) {
            Verdict::True
        } else if t.e.contains(i) {
            Verdict::Error
        } else {
            Verdict::False
        }
    }

    #[test]
    fn the_connectives_follow_cel_truth_tables() {
        use Verdict::*;
        let all = [False, True, Error];
        let mut a = Vec::new();
        let mut b = Vec::new();
        for x in all {
            for y in all {
                a.push(x);
                b.push(y);
            }
        }
        let (ta, tb) = (tri(9, &a), tri(9, &b));
        let and = ta.clone().and(&tb);
        let or = ta.clone().or(&tb);
        let not = ta.clone().not();
        for i in 0..9 {
            let expected_and = match (a[i], b[i]) {
                (False, _) | (_, False) => False,
                (True, True) => True,
                _ => Error,
            };
            let expected_or = match (a[i], b[i]) {
                (True, _) | (_, True) => True,
                (False, False) => False,
                _ => Error,
            };
            let expected_not = match a[i] {
                True => False,
                False => True,
                Error => Error,
            };
            assert_eq!(verdict(&and, i), expected_and, "{:?} && {:?}", a[i], b[i]);
            assert_eq!(verdict(&or, i), expected_or, "{:?} || {:?}", a[i], b[i]);
            assert_eq!(verdict(&not, i), expected_not, "!{:?}", a[i]);
        }
        assert_eq!(not.t.words()[0] >> 9, 0, "negation leaves no bit past the end");
    }

    #[test]
    fn the_conditional_picks_a_branch_or_fails() {
        use Verdict::*;
        let c = tri(3, &[True, False, Error]);
        let a = tri(3, &[False, True, True]);
        let b = tri(3, &[True, Error, True]);
        let r = c.cond(&a, &b);
        assert_eq!((verdict(&r, 0), verdict(&r, 1), verdict(&r, 2)), (False, Error, Error));
    }

    #[test]
    fn bitsets_count_and_iterate_their_members() {
        let mut s = Bitset::new(130);
        for i in [0, 63, 64, 129, 130] {
            s.insert(i);
        }
        assert_eq!(s.count(), 4);
        assert_eq!(s.iter_ones().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        assert!(s.contains(129) && !s.contains(1) && !s.contains(130));
        assert_eq!(Bitset::full(130).count(), 130);
    }
}

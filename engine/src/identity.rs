//! Identity: the one canonical form of a person's key (their email), used everywhere.
//!
//! A person is one key whether it arrives from the directory, a policy (an
//! override's `user`, a group's `members` and `exclude`), a usage row, a spend
//! check, a token or a credit request. Two spellings that a reader would take for
//! the same address must not get two limits, so every place that keys a person
//! calls [`canonical`] (or [`canonical_email`], which also checks the shape):
//!
//! 1. surrounding whitespace is trimmed;
//! 2. characters a reader cannot see are refused, not silently dropped: zero-width
//!    characters, bidirectional controls, every other control (`Cc`) or format
//!    (`Cf`) character, and the line and paragraph separators. Dropping them would
//!    let a crafted key look like one person in a review and key another;
//! 3. the text is put in Unicode NFC, so a precomposed `é` and `e` + U+0301 are one key;
//! 4. letters are lowercased with Unicode's default lowercase mapping (what
//!    [`str::to_lowercase`] does), then put in NFC again. This is lowercasing, not
//!    full case folding: full folding maps `ß` to `ss`, and `straße@` and
//!    `strasse@` are different mailboxes, while `Zoe@` and `zoe@` are one in
//!    practice everywhere.
//!
//! Plain lowercase ASCII (nearly every real key) is returned borrowed, unchanged.

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Longest email accepted, in bytes (64 for the local part, `@`, 255 for the domain).
pub const MAX_EMAIL_BYTES: usize = 320;

/// Why a character is refused in an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hidden {
    /// A zero-width character (U+200B–U+200D, U+2060, U+FEFF, a soft hyphen…).
    ZeroWidth,
    /// A bidirectional control (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C).
    Bidi,
    /// Another control or format character (C0/C1 controls, line separators, tags…).
    Control,
}

impl Hidden {
    /// The kind of character, as a message names it.
    pub fn describe(self) -> &'static str {
        match self {
            Hidden::ZeroWidth => "a zero-width character",
            Hidden::Bidi => "a bidirectional control character",
            Hidden::Control => "a control character",
        }
    }
}

/// Why a text is not an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Nothing left after trimming.
    #[error("the user is empty")]
    Empty,
    /// A character a reader cannot see.
    #[error("`{shown}` contains {}, {}, which cannot be seen: type the address again", kind.describe(), codepoint(*ch))]
    Hidden {
        /// The input, with refused characters written as `\u{…}`.
        shown: String,
        /// The first refused character.
        ch: char,
        /// Why it is refused.
        kind: Hidden,
    },
    /// Not `local@domain`.
    #[error("`{0}` is not an email address")]
    NotAnEmail(String),
    /// Longer than [`MAX_EMAIL_BYTES`].
    #[error("`{0}` is longer than {MAX_EMAIL_BYTES} bytes")]
    TooLong(String),
}

fn codepoint(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// Whether a character is refused in an identity, and why.
pub fn hidden(c: char) -> Option<Hidden> {
    let cp = u32::from(c);
    match cp {
        0x200B..=0x200D | 0x2060 | 0xFEFF | 0x00AD | 0x180E | 0x034F | 0x115F | 0x1160 | 0x3164 | 0xFFA0 => {
            Some(Hidden::ZeroWidth)
        }
        0x202A..=0x202E | 0x2066..=0x2069 | 0x200E | 0x200F | 0x061C => Some(Hidden::Bidi),
        // Cc, the line and paragraph separators, and the rest of Cf (Unicode 16):
        // invisible in most renderings, so they could hide a different key.
        0x0000..=0x001F
        | 0x007F..=0x009F
        | 0x2028
        | 0x2029
        | 0x0600..=0x0605
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x2061..=0x2064
        | 0x206A..=0x206F
        | 0xFE00..=0xFE0F
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0000..=0xE0FFF => Some(Hidden::Control),
        _ => None,
    }
}

/// Input for a message: refused characters spelled `\u{…}` so the reader sees them,
/// shortened to 80 characters.
pub fn show(raw: &str) -> String {
    let mut out = String::new();
    for (i, c) in raw.chars().enumerate() {
        if i == 80 {
            out.push('…');
            break;
        }
        if hidden(c).is_some() {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The canonical form of a person's key: trimmed, no hidden characters, NFC, lowercase.
///
/// Does not check that it is an email (usage exports may key people otherwise);
/// [`canonical_email`] does.
pub fn canonical(raw: &str) -> Result<Cow<'_, str>, IdentityError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(IdentityError::Empty);
    }
    if let Some((ch, kind)) = text.chars().find_map(|c| hidden(c).map(|k| (c, k))) {
        return Err(IdentityError::Hidden { shown: show(raw), ch, kind });
    }
    if text.is_ascii() {
        if !text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Ok(Cow::Borrowed(text));
        }
        return Ok(Cow::Owned(text.to_ascii_lowercase()));
    }
    let composed: String = match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => text.to_owned(),
        _ => text.nfc().collect(),
    };
    let lower = composed.to_lowercase();
    // Lowercasing can leave a sequence that composes further (or no longer composes),
    // so the result is normalised once more; the second pass is a no-op almost always.
    Ok(match is_nfc_quick(lower.chars()) {
        IsNormalized::Yes => Cow::Owned(lower),
        _ => Cow::Owned(lower.nfc().collect()),
    })
}

/// The canonical form of an email: [`canonical`], then `local@domain` with both
/// parts non-empty, one `@`, no whitespace, at most [`MAX_EMAIL_BYTES`] bytes.
pub fn canonical_email(raw: &str) -> Result<Cow<'_, str>, IdentityError> {
    let email = canonical(raw)?;
    if email.len() > MAX_EMAIL_BYTES {
        return Err(IdentityError::TooLong(show(raw)));
    }
    let shaped = matches!(email.split_once('@'), Some((local, domain))
        if !local.is_empty() && !domain.is_empty() && !domain.contains('@'))
        && !email.chars().any(char::is_whitespace);
    if !shaped {
        return Err(IdentityError::NotAnEmail(show(raw)));
    }
    Ok(email)
}

/// What makes `raw` differ from its canonical form, for a message: `surrounding
/// whitespace`, `not in Unicode NFC`, `uppercase letters` (empty when canonical or
/// refused). A decomposed `é` looks the same as the precomposed one, so saying why
/// matters.
pub fn differences(raw: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let Ok(canonical) = canonical(raw) else { return out };
    let trimmed = raw.trim();
    if trimmed != raw {
        out.push("surrounding whitespace");
    }
    if !matches!(is_nfc_quick(trimmed.chars()), IsNormalized::Yes) && trimmed.nfc().ne(trimmed.chars()) {
        out.push("not in Unicode NFC (a letter and a combining mark where one character exists)");
    }
    let composed: String = trimmed.nfc().collect();
    if composed != *canonical {
        out.push("uppercase letters");
    }
    out
}

/// True when `raw` is already canonical (as written, nothing to change).
pub fn is_canonical(raw: &str) -> bool {
    matches!(canonical(raw), Ok(c) if c == raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        canonical_email(raw).map(Cow::into_owned).unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn spellings_of_one_person_are_one_key() {
        for raw in [
            "zoe@acme.com",
            "Zoe@acme.com",
            "ZOE@ACME.COM",
            " zoe@acme.com ",
            "\tZoe@Acme.Com\n",
            "zoE@acme.COM",
        ] {
            assert_eq!(ok(raw), "zoe@acme.com", "{raw:?}");
        }
        assert!(matches!(canonical("zoe@acme.com"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn unicode_is_composed_then_lowercased() {
        // precomposed É, and E + combining acute: one key, precomposed and lowercase
        assert_eq!(ok("Ren\u{00C9}@acme.com"), "ren\u{00E9}@acme.com");
        assert_eq!(ok("RenE\u{0301}@acme.com"), "ren\u{00E9}@acme.com");
        assert_eq!(ok("ren\u{0065}\u{0301}@acme.com"), "ren\u{00E9}@acme.com");
        // lowercasing, not full folding: ß stays ß
        assert_eq!(ok("STRAßE@acme.de"), "straße@acme.de");
        assert_eq!(ok("ΣΟΦΙΑ@acme.gr"), "σοφια@acme.gr");
    }

    #[test]
    fn hidden_characters_are_refused_with_what_and_where() {
        let err = canonical_email("eve\u{200B}@acme.com").unwrap_err();
        assert_eq!(
            err,
            IdentityError::Hidden {
                shown: "eve\\u{200b}@acme.com".into(),
                ch: '\u{200B}',
                kind: Hidden::ZeroWidth
            }
        );
        assert_eq!(
            err.to_string(),
            "`eve\\u{200b}@acme.com` contains a zero-width character, U+200B, which cannot be seen: type the address again"
        );
        for (c, kind) in [
            ('\u{200C}', Hidden::ZeroWidth),
            ('\u{200D}', Hidden::ZeroWidth),
            ('\u{2060}', Hidden::ZeroWidth),
            ('\u{FEFF}', Hidden::ZeroWidth),
            ('\u{202E}', Hidden::Bidi),
            ('\u{2066}', Hidden::Bidi),
            ('\u{200F}', Hidden::Bidi),
            ('\u{061C}', Hidden::Bidi),
            ('\u{0000}', Hidden::Control),
            ('\u{0085}', Hidden::Control),
            ('\u{2028}', Hidden::Control),
            ('\u{E0041}', Hidden::Control),
        ] {
            let raw = format!("ev{c}e@acme.com");
            assert!(
                matches!(canonical(&raw), Err(IdentityError::Hidden { kind: k, .. }) if k == kind),
                "{raw:?}"
            );
        }
        // a leading BOM is not whitespace to `trim`: refused too, never silently kept
        assert!(canonical("\u{FEFF}eve@acme.com").is_err());
    }

    #[test]
    fn shape_and_length() {
        assert_eq!(canonical_email("  "), Err(IdentityError::Empty));
        assert_eq!(canonical_email("zoe"), Err(IdentityError::NotAnEmail("zoe".into())));
        assert!(matches!(canonical_email("a@b@c"), Err(IdentityError::NotAnEmail(_))));
        assert!(matches!(canonical_email("@acme.com"), Err(IdentityError::NotAnEmail(_))));
        assert!(matches!(canonical_email("zoe @acme.com"), Err(IdentityError::NotAnEmail(_))));
        let long = format!("{}@acme.com", "a".repeat(MAX_EMAIL_BYTES));
        assert!(matches!(canonical_email(&long), Err(IdentityError::TooLong(_))));
        // usage keys need not be emails
        assert_eq!(canonical("User-42").as_deref(), Ok("user-42"));
    }

    #[test]
    fn differences_say_why() {
        assert_eq!(differences(" Zoe@x"), ["surrounding whitespace", "uppercase letters"]);
        assert_eq!(
            differences("rene\u{0301}@x"),
            ["not in Unicode NFC (a letter and a combining mark where one character exists)"]
        );
        assert!(differences("zoe@x").is_empty());
    }

    #[test]
    fn canonical_is_idempotent_and_is_canonical_agrees() {
        for raw in ["Zoe@x", "RenE\u{0301}@x", "İstanbul@x", "ǅ@x"] {
            let once = canonical(raw).unwrap().into_owned();
            assert_eq!(canonical(&once).unwrap(), once, "{raw:?}");
            assert!(is_canonical(&once));
            assert!(!is_canonical(raw));
        }
    }
}

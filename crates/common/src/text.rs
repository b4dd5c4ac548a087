//! Strings an outsider controls, bounded before they are logged, stored, grouped or broadcast.
//!
//! [`capped`] keeps the first bytes of a string (cut on a character boundary) and marks the cut
//! with how much was left out: `abc…[+1234 bytes]`. A string within the cap is borrowed, so the
//! common case costs nothing.

use std::borrow::Cow;
use std::fmt;

/// Longest name kept whole: model, machine, node, user and key names.
pub const MAX_NAME: usize = 256;
/// Longest error text kept whole (error answers relayed from nodes, refusal messages).
pub const MAX_ERROR: usize = 2048;

/// `s` if it is at most `max` bytes; else its first `max` bytes or fewer (on a character
/// boundary) followed by `…[+N bytes]`, `N` the bytes cut off.
pub fn capped(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…[+{} bytes]", &s[..end], s.len() - end))
}

/// [`capped`] in place: an owned string over `max` bytes is replaced by its capped form.
pub fn cap_in_place(s: &mut String, max: usize) {
    if let Cow::Owned(shorter) = capped(s, max) {
        *s = shorter;
    }
}

/// [`capped`] of a byte string read as UTF-8 (invalid sequences replaced); only the kept bytes
/// are decoded.
pub fn capped_lossy(bytes: &[u8], max: usize) -> String {
    if bytes.len() <= max {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    // Back off (at most 3 bytes) so the cut does not split a character.
    let mut end = max;
    while end > 0 && max - end < 3 && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    format!(
        "{}…[+{} bytes]",
        String::from_utf8_lossy(&bytes[..end]),
        bytes.len() - end
    )
}

/// `value` displayed with at most `max` bytes, the cut marked as by [`capped`]; formats into the
/// destination without an intermediate string (for log fields: `error = %bounded(&e, MAX_ERROR)`).
pub fn bounded<T: fmt::Display + ?Sized>(value: &T, max: usize) -> Bounded<'_, T> {
    Bounded { value, max }
}

/// See [`bounded`].
pub struct Bounded<'a, T: ?Sized> {
    value: &'a T,
    max: usize,
}

impl<T: fmt::Display + ?Sized> fmt::Display for Bounded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cut = Cut {
            out: f,
            left: self.max,
            dropped: 0,
        };
        fmt::write(&mut cut, format_args!("{}", self.value))?;
        let dropped = cut.dropped;
        if dropped > 0 {
            write!(f, "…[+{dropped} bytes]")?;
        }
        Ok(())
    }
}

/// Passes on the first `left` bytes and counts the rest.
struct Cut<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    left: usize,
    dropped: usize,
}

impl fmt::Write for Cut<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.left {
            self.left -= s.len();
            return self.out.write_str(s);
        }
        let mut end = self.left;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.left = 0;
        self.dropped += s.len() - end;
        self.out.write_str(&s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_borrowed() {
        assert!(matches!(capped("model", 256), Cow::Borrowed("model")));
        assert!(matches!(capped("", 0), Cow::Borrowed("")));
    }

    #[test]
    fn long_strings_are_cut_on_a_char_boundary_and_marked() {
        assert_eq!(capped("abcdef", 3), "abc…[+3 bytes]");
        // 'é' is two bytes: a cut inside it moves back.
        assert_eq!(capped("aébc", 2), "a…[+4 bytes]");
        let big = "x".repeat(30 << 20);
        let out = capped(&big, MAX_NAME);
        assert!(out.len() < MAX_NAME + 32);
        assert!(out.ends_with(&format!("…[+{} bytes]", (30 << 20) - MAX_NAME)));
    }

    #[test]
    fn bounded_display_matches_capped() {
        for (text, max) in [("abcdef", 3), ("aébc", 2), ("short", 10), ("", 0)] {
            assert_eq!(bounded(text, max).to_string(), capped(text, max), "{text}");
        }
        let error = std::io::Error::other("z".repeat(5000));
        assert_eq!(
            bounded(&error, 4).to_string(),
            format!("zzzz…[+{} bytes]", 4996)
        );
    }

    #[test]
    fn in_place_and_lossy_forms_agree() {
        let mut s = "abcdef".to_owned();
        cap_in_place(&mut s, 3);
        assert_eq!(s, "abc…[+3 bytes]");
        assert_eq!(capped_lossy(b"abcdef", 3), "abc…[+3 bytes]");
        assert_eq!(capped_lossy(b"abc", 3), "abc");
        let big = vec![b'y'; 10_000];
        assert_eq!(
            capped_lossy(&big, 10),
            format!("{}…[+9990 bytes]", "y".repeat(10))
        );
        assert_eq!(capped_lossy(b"a\xffb", 10), "a\u{fffd}b");
    }
}

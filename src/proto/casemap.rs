//! CASEMAPPING: how nicks and channel names fold for comparison.

/// The casemapping advertised in 005 and used for every lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Casemapping {
    #[default]
    Ascii,
    Rfc1459,
}

/// A casefolded name: the key of nick and channel maps, never shown to users.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Folded(String);

impl Casemapping {
    /// The 005 token value.
    pub fn name(self) -> &'static str {
        match self {
            Casemapping::Ascii => "ascii",
            Casemapping::Rfc1459 => "rfc1459",
        }
    }

    /// Folds one byte.
    pub fn fold_byte(self, b: u8) -> u8 {
        match (self, b) {
            (_, b'A'..=b'Z') => b + 32,
            // `[\]^` (0x5B..=0x5E) fold to `{|}~` (0x7B..=0x7E), staying in ASCII.
            (Casemapping::Rfc1459, b'[' | b']' | b'\\' | b'^') => b + 32,
            _ => b,
        }
    }

    /// Folds a name into its lookup key.
    pub fn fold(self, s: &str) -> Folded {
        let bytes: Vec<u8> = s.bytes().map(|b| self.fold_byte(b)).collect();
        // Folding maps ASCII to ASCII only, so UTF-8 stays valid.
        Folded(
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// Compares two names under this casemapping.
    pub fn eq(self, a: &str, b: &str) -> bool {
        a.len() == b.len()
            && a.bytes()
                .zip(b.bytes())
                .all(|(x, y)| self.fold_byte(x) == self.fold_byte(y))
    }
}

impl Folded {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1459_pairs_brackets_backslash_and_caret_tilde() {
        assert!(Casemapping::Rfc1459.eq("[a]\\^", "{A}|~"));
        assert_eq!(Casemapping::Rfc1459.fold("Nick[^]~").as_str(), "nick{~}~");
    }

    #[test]
    fn folding_stays_ascii() {
        for b in 0..=0x7f_u8 {
            assert!(Casemapping::Rfc1459.fold_byte(b).is_ascii());
            assert!(Casemapping::Ascii.fold_byte(b).is_ascii());
        }
    }

    #[test]
    fn ascii_leaves_punctuation_alone() {
        assert!(!Casemapping::Ascii.eq("[", "{"));
        assert!(Casemapping::Ascii.eq("NiCk", "nick"));
    }
}

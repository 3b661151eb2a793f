//! Glob masks (`*`, `?`, with `\*`, `\?` and `\\` as escapes) matched under
//! a casemapping, for bans, exceptions, invite exceptions and WHO/LIST
//! patterns.

use super::Casemapping;

/// A compiled mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    pattern: String,
    casemapping: Casemapping,
}

/// One element of a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// `*`: any run of characters, also none.
    AnyRun,
    /// `?`: exactly one character.
    AnyOne,
    /// A character to compare, escaped or not.
    Literal(char),
}

impl Mask {
    pub fn new(pattern: &str, casemapping: Casemapping) -> Mask {
        Mask {
            pattern: pattern.to_owned(),
            casemapping,
        }
    }

    /// The mask as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Does `subject` match, folding both sides?
    ///
    /// Two-pointer matching that backtracks only to the latest `*`, so the
    /// cost is at most pattern length × subject length, never exponential.
    pub fn matches(&self, subject: &str) -> bool {
        let mut unlimited = usize::MAX;
        self.matches_within(subject, &mut unlimited) == Some(true)
    }

    /// Like [`Mask::matches`], spending one unit of `budget` per step
    /// actually taken: `None` when it runs out before the answer. A search
    /// such as `*rust*` costs about the subject's length, a mask built to
    /// backtrack up to pattern × subject.
    pub fn matches_within(&self, subject: &str, budget: &mut usize) -> Option<bool> {
        let pattern = self.pattern.as_str();
        // Byte offsets into `pattern` and `subject`, always on char boundaries.
        let mut p = 0;
        let mut s = 0;
        // Where to resume after the latest `*`: the pattern after it, and the
        // subject position that `*` has swallowed up to.
        let mut resume: Option<(usize, usize)> = None;

        while let Some(subject_char) = subject[s..].chars().next() {
            *budget = budget.checked_sub(1)?;
            match next_token(pattern, p) {
                Some((Token::AnyRun, after)) => {
                    resume = Some((after, s));
                    p = after;
                    continue;
                }
                Some((Token::AnyOne, after)) => {
                    p = after;
                    s += subject_char.len_utf8();
                    continue;
                }
                Some((Token::Literal(c), after)) if self.fold(c) == self.fold(subject_char) => {
                    p = after;
                    s += subject_char.len_utf8();
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the latest `*` swallow one more character.
            let Some((after_star, swallowed)) = resume else {
                return Some(false);
            };
            let swallowed = swallowed
                + subject[swallowed..]
                    .chars()
                    .next()
                    .map_or(1, char::len_utf8);
            resume = Some((after_star, swallowed));
            p = after_star;
            s = swallowed;
        }

        // The subject is used up: only `*`s may remain.
        while let Some((token, after)) = next_token(pattern, p) {
            *budget = budget.checked_sub(1)?;
            if token != Token::AnyRun {
                return Some(false);
            }
            p = after;
        }
        Some(true)
    }

    /// Folds one character; the casemappings only touch ASCII.
    fn fold(&self, c: char) -> char {
        match u8::try_from(c) {
            Ok(b) if b.is_ascii() => char::from(self.casemapping.fold_byte(b)),
            _ => c,
        }
    }
}

/// The token starting at byte `at` of `pattern` and the offset after it.
///
/// Only `\*` and `\?` are escapes (RFC 2812 §2.5): a `\` before any other
/// character, another `\` included, or at the end, stands for itself, so a
/// nick such as `tr\oll` or `tr\\oll` is matched by its own exact mask.
fn next_token(pattern: &str, at: usize) -> Option<(Token, usize)> {
    let mut chars = pattern[at..].chars();
    let first = chars.next()?;
    let after_first = at + first.len_utf8();
    let token = match first {
        '*' => Token::AnyRun,
        '?' => Token::AnyOne,
        '\\' => match chars.next() {
            Some(escaped @ ('*' | '?')) => {
                return Some((Token::Literal(escaped), after_first + escaped.len_utf8()));
            }
            _ => Token::Literal('\\'),
        },
        other => Token::Literal(other),
    };
    Some((token, after_first))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascii(pattern: &str) -> Mask {
        Mask::new(pattern, Casemapping::Ascii)
    }

    #[test]
    fn a_search_costs_about_the_subject_and_a_crafted_mask_more() {
        let steps = |pattern: &str, subject: &str| {
            let mut budget = usize::MAX;
            let answer = ascii(pattern).matches_within(subject, &mut budget);
            assert!(answer.is_some());
            usize::MAX - budget
        };
        let name = "#general-discussion-00001";
        assert!(
            steps("*rust*", name) <= 2 * name.len(),
            "{}",
            steps("*rust*", name)
        );
        let crafted = format!("*{}b", "a".repeat(30));
        let victim = format!("#{}00001", "a".repeat(58));
        assert!(steps(&crafted, &victim) > 20 * victim.len());
    }

    #[test]
    fn running_out_of_budget_gives_no_answer() {
        let mut budget = 3;
        assert_eq!(ascii("*z").matches_within("abcdef", &mut budget), None);
        let mut budget = 100;
        assert_eq!(
            ascii("*f").matches_within("abcdef", &mut budget),
            Some(true)
        );
    }

    #[test]
    fn star_alone_matches_everything() {
        assert!(ascii("*").matches(""));
        assert!(ascii("*").matches("nick!user@host"));
        assert!(ascii("**").matches("x"));
    }

    #[test]
    fn empty_mask_matches_only_empty() {
        assert!(ascii("").matches(""));
        assert!(!ascii("").matches("a"));
    }

    #[test]
    fn question_mark_is_exactly_one_char() {
        assert!(ascii("a?c").matches("abc"));
        assert!(ascii("a?c").matches("aéc"));
        assert!(ascii("a?c").matches("a日c"));
        assert!(!ascii("a?c").matches("ac"));
        assert!(!ascii("a?c").matches("abbc"));
    }

    #[test]
    fn escapes_make_wildcards_literal() {
        assert!(ascii("a\\*b").matches("a*b"));
        assert!(!ascii("a\\*b").matches("axb"));
        assert!(ascii("a\\?b").matches("a?b"));
        assert!(!ascii("a\\?b").matches("axb"));
        assert!(ascii("a\\\\b").matches("a\\\\b"));
        assert!(ascii("a\\").matches("a\\"));
    }

    #[test]
    fn a_backslash_before_an_ordinary_character_is_itself() {
        assert!(ascii("\\x").matches("\\x"));
        assert!(!ascii("\\x").matches("x"));
        assert!(ascii("tr\\oll").matches("tr\\oll"));
        assert!(!ascii("tr\\oll").matches("troll"));
        assert!(ascii("tr\\oll!*@*").matches("tr\\oll!~evil@127.0.0.1"));
        assert!(ascii("tr\\oll!~evil@127.0.0.1").matches("tr\\oll!~evil@127.0.0.1"));
        assert!(ascii("tr\\\\oll").matches("tr\\\\oll"));
        assert!(!ascii("tr\\\\oll").matches("tr\\oll"));
        assert!(ascii("a\\\\*").matches("a\\*"));
        assert!(!ascii("a\\\\*").matches("a\\anything"));
    }

    #[test]
    fn ascii_folds_letters_only() {
        assert!(ascii("NICK!*@*").matches("nick!u@h"));
        assert!(!ascii("a[b]").matches("a{b}"));
    }

    #[test]
    fn rfc1459_folds_brackets_backslash_and_tilde() {
        let mask = Mask::new("[foo]\\~*", Casemapping::Rfc1459);
        assert!(mask.matches("{FOO}|^bar"));
        assert!(mask.matches("[foo]\\~"));
        assert!(!mask.matches("(foo)|^"));
        assert!(Mask::new("^", Casemapping::Rfc1459).matches("~"));
        assert!(!Mask::new("{", Casemapping::Ascii).matches("["));
    }

    #[test]
    fn backtracks_past_a_false_start() {
        assert!(ascii("*ab").matches("aab"));
        assert!(ascii("a*b*c").matches("a-b-b-c"));
        assert!(!ascii("a*b*c").matches("a-b-b-d"));
        assert!(ascii("*é?").matches("ééé"));
    }

    #[test]
    fn many_stars_stay_fast() {
        let mask = ascii(&"*a".repeat(50));
        let subject = "a".repeat(49) + &"b".repeat(5000);
        assert!(!mask.matches(&subject));
    }
}

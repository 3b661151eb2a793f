//! `[metadata]`: the limits of IRCv3 metadata (`draft/metadata-3`), which
//! clients read in the capability's value.

use serde::{Deserialize, Serialize};

/// The longest value the server accepts whatever the configuration says:
/// a value travels whole in one 761 line, beside a key, a nick and a
/// target, within IRC's 512 bytes.
pub const MAX_VALUE_BYTES: usize = 300;

/// The longest key name.
pub const MAX_KEY_BYTES: usize = 64;

/// `[metadata]`: how much metadata a user or room may carry, and which keys.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetadataConfig {
    /// Whether `draft/metadata-3` is offered at all.
    pub enabled: bool,
    /// Keys one user, or one room, may have set at once (cap value `max-keys`).
    pub max_keys: usize,
    /// The longest value, in bytes (cap value `max-value-bytes`).
    pub max_value_bytes: usize,
    /// Keys one connection may subscribe to (cap value `max-subs`).
    pub max_subs: usize,
    /// The only keys that may be set; empty: any valid key name.
    pub allowed_keys: Vec<String>,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            enabled: true,
            max_keys: 20,
            max_value_bytes: MAX_VALUE_BYTES,
            max_subs: 50,
            allowed_keys: Vec::new(),
        }
    }
}

impl MetadataConfig {
    /// Whether `key` (a valid name) may be set under this configuration.
    pub fn allows(&self, key: &str) -> bool {
        self.allowed_keys.is_empty() || self.allowed_keys.iter().any(|allowed| allowed == key)
    }
}

/// Whether `key` is a valid key name: lowercase letters, digits and
/// `_ . / -`, at most [`MAX_KEY_BYTES`] (the current draft's rule, which
/// leaves out upper case and the colon of the earlier one).
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_./-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_lowercase_and_bounded() {
        for good in ["avatar", "display-name", "im.xmpp", "a_b/c"] {
            assert!(is_valid_key(good), "{good}");
        }
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for bad in ["", "Avatar", ":x", "a b", "$url$", long.as_str()] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn an_empty_list_allows_every_key() {
        let mut config = MetadataConfig::default();
        assert!(config.allows("avatar"));
        config.allowed_keys = vec!["display-name".into()];
        assert!(config.allows("display-name"));
        assert!(!config.allows("avatar"));
    }
}

//! Passwords: the one argon2id policy (operators' and accounts'), and the
//! SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) derived from the same
//! password, so a client may log in with SCRAM without the server keeping
//! anything it could log in with itself.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use hmac::{Hmac, Mac};
use sha2::digest::CtOutput;
use sha2::{Digest, Sha256};

/// The longest password accepted, in bytes: far more than anyone types,
/// small enough that hashing it costs nothing extra.
pub const MAX_PASSWORD_LEN: usize = 512;

/// The SCRAM iteration count new credentials get: RFC 7677 §4 asks for at
/// least 4096. Each account keeps its own, so it can be raised later.
pub const SCRAM_ITERATIONS: u32 = 4096;

/// How many random bytes of salt new SCRAM credentials get.
const SCRAM_SALT_LEN: usize = 16;

/// Why a password cannot be set.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// The argon2id hash of `password` in PHC format, with argon2's default
/// parameters (argon2id, 19 MiB, 2 passes). `rookery passwd` prints it for
/// `[[oper]] password_hash`; accounts store it.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check(password)?;
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(PasswordError::Hash)
}

/// Whether `password` matches a PHC-format argon2 hash; any parameters the
/// hash names are used, so older hashes keep verifying.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends on `password` what [`verify`] spends on a real account's hash,
/// and refuses it: a login to an account that does not exist then takes
/// as long as a wrong password, so timing does not tell which exist.
pub fn verify_decoy(password: &str) -> bool {
    verify(password, decoy_hash());
    false
}

/// A hash made once, with the parameters [`hash`] gives real accounts.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy").unwrap_or_default())
}

fn check(password: &str) -> Result<(), PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// What an account keeps of its password: an argon2id hash for PLAIN and
/// IDENTIFY, and the SCRAM-SHA-256 verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// argon2id, PHC format.
    pub hash: String,
    pub scram: ScramCredentials,
}

impl Credentials {
    /// Both forms from one password, with fresh random salts.
    pub fn derive(password: &str) -> Result<Credentials, PasswordError> {
        let hash = hash(password)?;
        let mut salt = vec![0; SCRAM_SALT_LEN];
        OsRng.fill_bytes(&mut salt);
        let scram = ScramCredentials::derive(password, salt, SCRAM_ITERATIONS);
        Ok(Credentials { hash, scram })
    }
}

/// A SCRAM-SHA-256 verifier (RFC 5802 §3): enough to check a client's
/// proof and prove the server knows it, not enough to log in as the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramCredentials {
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// H(ClientKey).
    pub stored_key: [u8; 32],
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: [u8; 32],
}

impl ScramCredentials {
    /// SaltedPassword := Hi(password, salt, i), then the two keys from it.
    /// The password's bytes are used as given, without RFC 5802's
    /// SASLprep (which leaves ASCII as it is): whoever checks a proof
    /// must prepare the password the same way it was prepared here.
    pub fn derive(password: &str, salt: Vec<u8>, iterations: u32) -> ScramCredentials {
        let salted = salted_password(password, &salt, iterations);
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramCredentials {
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac_sha256(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// ServerSignature := HMAC(ServerKey, AuthMessage), sent in the
    /// server-final-message.
    pub fn server_signature(&self, auth_message: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.server_key, auth_message)
    }

    /// Whether a client-final-message's proof is right for this
    /// AuthMessage: ClientKey := ClientProof XOR HMAC(StoredKey,
    /// AuthMessage), and H(ClientKey) must be StoredKey.
    pub fn verify_proof(&self, auth_message: &[u8], proof: &[u8]) -> bool {
        let Ok(proof) = <[u8; 32]>::try_from(proof) else {
            return false;
        };
        let signature = hmac_sha256(&self.stored_key, auth_message);
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        // Compared in constant time: how long it takes says nothing of
        // where the bytes differ.
        CtOutput::<Sha256>::new(Sha256::digest(&client_key))
            == CtOutput::new(self.stored_key.into())
    }
}

fn salted_password(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// The salt SCRAM shows for an account that does not exist: derived from
/// a server secret and the account's casefolded name, so it looks like a
/// real one and is the same each time it is asked for. The exchange then
/// fails at the proof, as for a wrong password, and never tells whether
/// the account exists.
pub fn decoy_salt(secret: &[u8], account_key: &str) -> Vec<u8> {
    let mac = hmac_sha256(secret, account_key.as_bytes());
    mac[..SCRAM_SALT_LEN].to_vec()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters of a PHC hash: all but its salt and digest.
    fn parameters(hash: &str) -> String {
        hash.split('$').take(4).collect::<Vec<_>>().join("$")
    }

    #[test]
    fn the_decoy_check_costs_what_a_real_one_does_and_never_passes() {
        assert!(!verify_decoy("decoy"));
        let real = hash("hunter2").unwrap();
        assert_eq!(parameters(decoy_hash()), parameters(&real));
        assert!(parameters(&real).starts_with("$argon2id$v=19$m="), "{real}");
    }

    #[test]
    fn a_decoy_salt_is_stable_per_account_and_secret_and_sized_like_a_real_one() {
        let salt = decoy_salt(b"secret", "alice");
        assert_eq!(salt.len(), SCRAM_SALT_LEN);
        assert_eq!(salt, decoy_salt(b"secret", "alice"));
        assert_ne!(salt, decoy_salt(b"secret", "bob"));
        assert_ne!(salt, decoy_salt(b"other", "alice"));
    }
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    /// The example exchange of RFC 7677 §3 (user "user", password "pencil").
    const CLIENT_FIRST_BARE: &str = "n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL_WITHOUT_PROOF: &str =
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const CLIENT_PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_SIGNATURE: &str = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn rfc7677() -> (ScramCredentials, String) {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credentials = ScramCredentials::derive("pencil", salt, 4096);
        let auth_message =
            format!("{CLIENT_FIRST_BARE},{SERVER_FIRST},{CLIENT_FINAL_WITHOUT_PROOF}");
        (credentials, auth_message)
    }

    #[test]
    fn rfc7677_server_signature_matches_the_example() {
        let (credentials, auth_message) = rfc7677();
        let signature = credentials.server_signature(auth_message.as_bytes());
        assert_eq!(STANDARD.encode(signature), SERVER_SIGNATURE);
    }

    #[test]
    fn rfc7677_client_proof_is_accepted() {
        let (credentials, auth_message) = rfc7677();
        let proof = STANDARD.decode(CLIENT_PROOF).unwrap();
        assert!(credentials.verify_proof(auth_message.as_bytes(), &proof));
    }

    #[test]
    fn rfc7677_client_proof_is_what_the_salted_password_gives() {
        // ClientProof := ClientKey XOR HMAC(H(ClientKey), AuthMessage),
        // computed from the password as a client does.
        let (credentials, auth_message) = rfc7677();
        let salted = salted_password("pencil", &credentials.salt, 4096);
        let client_key = hmac_sha256(&salted, b"Client Key");
        let signature = hmac_sha256(&credentials.stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(STANDARD.encode(proof), CLIENT_PROOF);
    }

    #[test]
    fn a_wrong_or_truncated_proof_is_refused() {
        let (credentials, auth_message) = rfc7677();
        let mut proof = STANDARD.decode(CLIENT_PROOF).unwrap();
        proof[0] ^= 1;
        assert!(!credentials.verify_proof(auth_message.as_bytes(), &proof));
        assert!(!credentials.verify_proof(auth_message.as_bytes(), &proof[..31]));
        let other = ScramCredentials::derive("pencil2", credentials.salt.clone(), 4096);
        let proof = STANDARD.decode(CLIENT_PROOF).unwrap();
        assert!(!other.verify_proof(auth_message.as_bytes(), &proof));
    }

    #[test]
    fn derived_credentials_verify_their_password_only() {
        let credentials = Credentials::derive("correct horse").unwrap();
        assert!(
            credentials.hash.starts_with("$argon2id$"),
            "{}",
            credentials.hash
        );
        assert!(verify("correct horse", &credentials.hash));
        assert!(!verify("correct horse ", &credentials.hash));
        assert_eq!(credentials.scram.iterations, SCRAM_ITERATIONS);
        assert_eq!(credentials.scram.salt.len(), SCRAM_SALT_LEN);
        assert_eq!(
            credentials.scram,
            ScramCredentials::derive("correct horse", credentials.scram.salt.clone(), 4096)
        );
    }

    #[test]
    fn empty_and_overlong_passwords_are_refused() {
        assert!(matches!(hash(""), Err(PasswordError::Empty)));
        let long = "x".repeat(MAX_PASSWORD_LEN + 1);
        assert!(matches!(hash(&long), Err(PasswordError::TooLong)));
        assert!(!verify("anything", "not a hash"));
    }
}

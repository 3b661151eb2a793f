//! The worker for the core's blocking jobs (its "admin worker"): it does
//! what the core must not, since the core never blocks and never touches
//! files. It loads the configuration for REHASH and publishes the new
//! connection settings and admission rules, checks OPER passwords against
//! their argon2 hashes, and writes the bans file atomically. Each answer
//! goes back to the core as an [`Event`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, watch};
use tracing::{error, info, warn};

use crate::accounts::mail::{self, Relay};
use crate::accounts::password::{SCRAM_ITERATIONS, decoy_salt, verify, verify_decoy};
use crate::accounts::store::check_email;
use crate::accounts::{
    Account, AccountError, Accounts, CodeCheck, Credentials, Naming, PendingCode, Place, Suspension,
};
use crate::config::{self, Config};
use crate::core::{
    AccountAbout, AccountJob, AccountOutcome, AdminRequest, BanList, ClientId, Event, ReloadError,
    Reloaded,
};
use crate::metadata_writer;
use crate::net::{
    self, AdmissionRules, ConnectionLimits, ConnectionSettings, HttpSettings, ReloadableTls,
};
use crate::room_writer::RoomWriter;

/// Password checks running at once; more wait their turn, so a crowd of
/// OPER attempts cannot take every core.
const CONCURRENT_OPER_CHECKS: usize = 2;
/// How long a mailed verification code stays good.
const CODE_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// What the worker needs to reach the rest of the server.
pub struct Worker {
    pub config_file: Option<PathBuf>,
    /// The configuration in force, to compare a reloaded one against.
    pub running: Arc<Config>,
    pub core: mpsc::Sender<Event>,
    pub settings: watch::Sender<Arc<ConnectionSettings>>,
    /// Publishes the HTTP listeners' origins, proxies and token.
    pub http: watch::Sender<Arc<HttpSettings>>,
    pub limits: Arc<ConnectionLimits>,
    /// Each TLS listener's certificate and key files and its acceptor, so a
    /// renewed certificate is picked up by REHASH.
    pub tls: Vec<(PathBuf, PathBuf, Arc<ReloadableTls>)>,
    /// The queue of account metadata's reads and writes, handed to its
    /// task when the worker starts.
    pub metadata: Option<mpsc::Receiver<crate::core::MetadataRequest>>,
}

impl Worker {
    /// Serves requests until the core drops its sender.
    pub async fn run(mut self, mut requests: mpsc::UnboundedReceiver<AdminRequest>) {
        let checks = Arc::new(Semaphore::new(CONCURRENT_OPER_CHECKS));
        // The secret of SCRAM's decoy salts, for this run of the server.
        let decoy: Arc<[u8]> = Arc::from(crate::core::cloak::random_secret().into_bytes());
        let rooms = RoomWriter::start(
            Place::of(&self.running.history),
            Naming::from_config(&self.running),
        );
        let metadata = self.metadata.take().map(|requests| {
            let place = Place::of(&self.running.history);
            let naming = Naming::from_config(&self.running);
            metadata_writer::start(place, naming, requests, self.core.clone())
        });
        while let Some(request) = requests.recv().await {
            match request {
                AdminRequest::Reload { requested_by } => self.reload(requested_by).await,
                AdminRequest::CheckOper {
                    password,
                    hash,
                    answer,
                } => {
                    let checks = Arc::clone(&checks);
                    // Dropped unanswered (this loop or the task stopped),
                    // `answer` still resumes the client with a failure.
                    tokio::spawn(async move {
                        let Ok(_permit) = checks.acquire_owned().await else {
                            return;
                        };
                        let valid = tokio::task::spawn_blocking(move || verify(&password, &hash))
                            .await
                            .unwrap_or(false);
                        answer.send(valid).await;
                    });
                }
                AdminRequest::Account { job, answer } => {
                    let checks = Arc::clone(&checks);
                    let place = Place::of(&self.running.history);
                    let naming = Naming::from_config(&self.running);
                    let decoy = Arc::clone(&decoy);
                    let relay = verification_relay(&self.running);
                    // Sharing the password checks' permits: logins cannot
                    // take every core either.
                    tokio::spawn(async move {
                        let Ok(_permit) = checks.acquire_owned().await else {
                            return;
                        };
                        let outcome = tokio::task::spawn_blocking(move || {
                            account_job(&place, naming, &decoy, relay.as_ref(), job)
                        })
                        .await
                        .unwrap_or(AccountOutcome::Unavailable);
                        answer.send(outcome).await;
                    });
                }
                // Written on the room writer's task, the latest per room.
                AdminRequest::SaveRoom(room) => rooms.save(room),
                AdminRequest::DropRoom { name } => rooms.drop_room(name),
                AdminRequest::RenameRoom { old, record } => rooms.rename(old, record),
                AdminRequest::SaveReadMarker(marker) => rooms.save_marker(marker),
                AdminRequest::SaveBans { path, bans } => {
                    let written =
                        tokio::task::spawn_blocking(move || save_bans(&path, &bans).map(|()| path))
                            .await;
                    match written {
                        Ok(Ok(path)) => info!(file = %path.display(), "bans file written"),
                        Ok(Err(error)) => error!("cannot write the bans file: {error}"),
                        Err(error) => error!("the bans file writer failed: {error}"),
                    }
                }
            }
        }
        rooms.finish().await;
        // Ends once the core (which dropped the requests' sender too) is gone.
        if let Some(task) = metadata
            && let Err(error) = task.await
        {
            error!("the account metadata writer failed: {error}");
        }
    }

    async fn reload(&mut self, requested_by: Option<ClientId>) {
        let files: Vec<(PathBuf, PathBuf)> = self
            .tls
            .iter()
            .map(|(cert, key, _)| (cert.clone(), key.clone()))
            .collect();
        let outcome = match self.config_file.clone() {
            None => Err(ReloadError::NoFile),
            Some(path) => {
                match tokio::task::spawn_blocking(move || load_all(&path, &files)).await {
                    Ok(Ok((loaded, certificates))) => {
                        for ((_, _, acceptor), certificate) in self.tls.iter().zip(certificates) {
                            acceptor.replace(certificate);
                        }
                        Ok(self.apply(loaded))
                    }
                    Ok(Err(error)) => Err(error),
                    Err(error) => Err(ReloadError::Loader(error)),
                }
            }
        };
        if let Err(error) = &outcome {
            error!("REHASH failed, keeping the running configuration: {error}");
        }
        let _ = self
            .core
            .send(Event::Reloaded {
                requested_by,
                outcome,
            })
            .await;
    }

    /// Keeps what cannot change at run time, then publishes the rest to
    /// new connections and to admission.
    fn apply(&mut self, mut loaded: Config) -> Reloaded {
        let kept = config::keep_restart_only(&self.running, &mut loaded);
        if !kept.is_empty() {
            let keys = kept.join(", ");
            warn!(%keys, "REHASH: these settings take effect at a restart; keeping the running values");
        }
        let config = Arc::new(loaded);
        self.settings
            .send_replace(Arc::new(ConnectionSettings::from_config(&config)));
        self.http
            .send_replace(Arc::new(HttpSettings::from_config(&config)));
        self.limits.update(AdmissionRules::from_config(&config));
        self.running = Arc::clone(&config);
        info!("configuration reloaded");
        Reloaded { config, kept }
    }
}

/// The bans file could not be read or written; the text names the file.
#[derive(Debug, thiserror::Error)]
pub enum BansFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {source}")]
    Serialize {
        path: PathBuf,
        source: toml::ser::Error,
    },
}

/// Reads the bans file; a missing file is an empty list.
pub fn load_bans(path: &Path) -> Result<BanList, BansFileError> {
    if path.as_os_str().is_empty() {
        return Ok(BanList::default());
    }
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|source| BansFileError::Parse {
            path: path.to_owned(),
            source,
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(BanList::default()),
        Err(source) => Err(BansFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Replaces the bans file through a temporary file and a rename, so a crash
/// leaves either the old file or the new one.
fn save_bans(path: &Path, bans: &BanList) -> Result<(), BansFileError> {
    let text = toml::to_string(bans).map_err(|source| BansFileError::Serialize {
        path: path.to_owned(),
        source,
    })?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(b"# K-lines and D-lines, rewritten by the server on every change.\n")?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().map_err(|source| BansFileError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The relay verification codes go through, when registering requires
/// an address.
fn verification_relay(config: &Config) -> Option<Relay> {
    let accounts = &config.accounts;
    (accounts.registration_requires_email && !accounts.smtp.relay.is_empty()).then(|| Relay {
        address: accounts.smtp.relay.clone(),
        from: accounts.smtp.from.clone(),
        network: config.server.network.clone(),
        server_name: config.server.name.clone(),
    })
}

/// Does an account job on the account tables. On SQLite the server holds
/// the database lock, so it may write them; on a shared database every
/// node writes them, and its keys keep names one.
fn account_job(
    place: &Place,
    naming: Naming,
    decoy: &[u8],
    relay: Option<&Relay>,
    job: AccountJob,
) -> AccountOutcome {
    let outcome = Accounts::open(place, naming).and_then(|mut store| match job {
        AccountJob::Verify { account, password } => check_password(&store, &account, &password),
        AccountJob::Register {
            name,
            password,
            email,
        } => match (relay, email) {
            (Some(relay), Some(email)) => {
                register_pending(&mut store, relay, &name, &password, &email)
            }
            (_, email) => register(&mut store, &name, &password, email.as_deref()),
        },
        AccountJob::VerifyCode { account, code } => verify_code(&mut store, &account, &code),
        AccountJob::ScramSalt { account } => scram_salt(&store, naming, decoy, &account),
        AccountJob::ScramProof {
            account,
            auth_message,
            proof,
        } => scram_proof(&store, &account, &auth_message, &proof),
        AccountJob::Info { account } => about(&store, &account),
        AccountJob::Suspend {
            account,
            reason,
            by,
        } => suspend(&mut store, &account, reason, by),
        AccountJob::Unsuspend { account } => unsuspend(&mut store, &account),
        AccountJob::AddCertificate {
            account,
            fingerprint,
        } => add_certificate(&mut store, &account, &fingerprint),
        AccountJob::RemoveCertificate {
            account,
            fingerprint,
        } => store
            .remove_certificate(&account, &fingerprint)
            .map(AccountOutcome::CertificateRemoved),
        AccountJob::ListCertificates { account } => store
            .certificates(&account)
            .map(AccountOutcome::Certificates),
        AccountJob::Certificate {
            fingerprint,
            account,
        } => certificate_login(&store, &fingerprint, account.as_deref()),
        AccountJob::SetPassword { account, password } => {
            set_password(&mut store, &account, &password)
        }
        AccountJob::SetEnforce { account, on } => store
            .set_enforce(&account, on)
            .map(|()| AccountOutcome::EnforceSet(on)),
        AccountJob::Drop { account, password } => drop_account(&mut store, &account, &password),
    });
    outcome.unwrap_or_else(|error| {
        error!("account store: {error}");
        AccountOutcome::Unavailable
    })
}

/// PLAIN or IDENTIFY: the password against the stored hash; a suspended
/// account is told apart only once the password is right.
fn check_password(
    store: &Accounts,
    account: &str,
    password: &str,
) -> Result<AccountOutcome, AccountError> {
    let Some(found) = store.find(account)? else {
        verify_decoy(password);
        return Ok(AccountOutcome::Invalid);
    };
    // A pending account answers as a wrong password would, unhashed.
    Ok(
        if found.pending || !verify(password, &found.credentials.hash) {
            AccountOutcome::Invalid
        } else if found.suspended.is_some() {
            AccountOutcome::Suspended
        } else {
            AccountOutcome::Valid(found.name)
        },
    )
}

/// NickServ REGISTER or the REGISTER command: a new account with both
/// kinds of credentials.
fn register(
    store: &mut Accounts,
    name: &str,
    password: &str,
    email: Option<&str>,
) -> Result<AccountOutcome, AccountError> {
    let credentials = match credentials_for(store, name, password, email)? {
        Ok(credentials) => credentials,
        Err(refused) => return Ok(refused),
    };
    let created = store.create(name, &credentials, email, now_ms());
    created_as(created, |account| {
        info!(account = %account.name, "account registered");
        AccountOutcome::Valid(account.name)
    })
}

/// REGISTER with an address to verify: the account is created pending
/// and its code mailed; a mail the relay does not take undoes it.
fn register_pending(
    store: &mut Accounts,
    relay: &Relay,
    name: &str,
    password: &str,
    email: &str,
) -> Result<AccountOutcome, AccountError> {
    let credentials = match credentials_for(store, name, password, Some(email))? {
        Ok(credentials) => credentials,
        Err(refused) => return Ok(refused),
    };
    let code = mail::new_code();
    let pending = PendingCode {
        code_hash: mail::code_hash(&code),
        expires_ms: now_ms() + CODE_LIFETIME_MS,
    };
    let account = match store.create_pending(name, &credentials, email, &pending, now_ms()) {
        Ok(account) => account,
        created => return created_as(created, |_| AccountOutcome::Taken),
    };
    if let Err(error) = relay.send_code(email, &account.name, &code) {
        error!(relay = %relay.address, account = %account.name, "verification mail not sent: {error}");
        store.remove_pending(&account.name)?;
        return Ok(AccountOutcome::MailFailed);
    }
    info!(account = %account.name, "account registered, waiting for its mailed code");
    Ok(AccountOutcome::Pending(account.name))
}

/// The checks before a new account's costly hash (a taken name, a bad
/// address), then the hash: `Err` holds the refusal.
fn credentials_for(
    store: &mut Accounts,
    name: &str,
    password: &str,
    email: Option<&str>,
) -> Result<Result<Credentials, AccountOutcome>, AccountError> {
    // An expired pending account gives its name back first.
    store.free_expired(now_ms())?;
    if store.find(name)?.is_some() || store.nick_owner(name)?.is_some() {
        return Ok(Err(AccountOutcome::Taken));
    }
    if email.is_some_and(|email| check_email(email).is_err()) {
        return Ok(Err(AccountOutcome::BadEmail));
    }
    Ok(Credentials::derive(password).map_err(|_| AccountOutcome::BadPassword))
}

/// A creation's outcome: `done` for the account, `Taken` when the name
/// was registered meanwhile.
fn created_as(
    created: Result<Account, AccountError>,
    done: impl FnOnce(Account) -> AccountOutcome,
) -> Result<AccountOutcome, AccountError> {
    match created {
        Ok(account) => Ok(done(account)),
        Err(AccountError::NameTaken(_) | AccountError::NickTaken(_)) => Ok(AccountOutcome::Taken),
        Err(AccountError::InvalidName(_, max)) => Ok(AccountOutcome::BadName { max }),
        Err(error) => Err(error),
    }
}

/// NickServ SET PASSWORD: new hash and SCRAM verifiers for a logged-in
/// account.
fn set_password(
    store: &mut Accounts,
    account: &str,
    password: &str,
) -> Result<AccountOutcome, AccountError> {
    let Ok(credentials) = Credentials::derive(password) else {
        return Ok(AccountOutcome::BadPassword);
    };
    store.set_password(account, &credentials)?;
    info!(account, "account password changed");
    Ok(AccountOutcome::PasswordSet)
}

/// NickServ DROP: the password checked as for a login, then the account
/// deleted with its nicks and certificates.
fn drop_account(
    store: &mut Accounts,
    account: &str,
    password: &str,
) -> Result<AccountOutcome, AccountError> {
    let name = match check_password(store, account, password)? {
        AccountOutcome::Valid(name) => name,
        refused => return Ok(refused),
    };
    store.delete(&name)?;
    info!(account = %name, "account dropped");
    Ok(AccountOutcome::Dropped(name))
}

/// VERIFY: the mailed code makes the pending account an ordinary one.
fn verify_code(
    store: &mut Accounts,
    account: &str,
    code: &str,
) -> Result<AccountOutcome, AccountError> {
    Ok(
        match store.check_code(account, &mail::code_hash(code), now_ms())? {
            CodeCheck::Verified(name) => {
                info!(account = %name, "account verified");
                AccountOutcome::Valid(name)
            }
            CodeCheck::Wrong | CodeCheck::NotPending => AccountOutcome::Invalid,
        },
    )
}

fn now_ms() -> i64 {
    crate::history::millis(std::time::SystemTime::now())
}

/// SCRAM's first step: the salt and iteration count the client needs.
/// An unknown account gets a decoy salt, and a suspended one its own: the
/// exchange tells either only at the proof, once the password is right.
fn scram_salt(
    store: &Accounts,
    naming: Naming,
    decoy: &[u8],
    account: &str,
) -> Result<AccountOutcome, AccountError> {
    Ok(match store.find(account)? {
        Some(found) => AccountOutcome::ScramSalt {
            salt: found.credentials.scram.salt,
            iterations: found.credentials.scram.iterations,
        },
        None => AccountOutcome::ScramSalt {
            salt: decoy_salt(decoy, naming.casemapping.fold(account).as_str()),
            iterations: SCRAM_ITERATIONS,
        },
    })
}

/// SCRAM's last step: the client's proof, and the server's signature
/// that proves the server knew the credentials too.
fn scram_proof(
    store: &Accounts,
    account: &str,
    auth_message: &str,
    proof: &[u8],
) -> Result<AccountOutcome, AccountError> {
    let Some(found) = store.find(account)? else {
        return Ok(AccountOutcome::Invalid);
    };
    let scram = &found.credentials.scram;
    Ok(
        if found.pending || !scram.verify_proof(auth_message.as_bytes(), proof) {
            AccountOutcome::Invalid
        } else if found.suspended.is_some() {
            AccountOutcome::Suspended
        } else {
            AccountOutcome::ScramProved {
                server_signature: scram.server_signature(auth_message.as_bytes()).to_vec(),
                account: found.name,
            }
        },
    )
}

/// NickServ SUSPEND: the account cannot log in until UNSUSPEND.
fn suspend(
    store: &mut Accounts,
    account: &str,
    reason: String,
    by: String,
) -> Result<AccountOutcome, AccountError> {
    let Some(found) = store.find(account)? else {
        return Ok(AccountOutcome::NotFound);
    };
    let at_ms = crate::history::millis(std::time::SystemTime::now());
    let suspension = Suspension { reason, by, at_ms };
    store.suspend(&found.name, &suspension)?;
    Ok(AccountOutcome::Changed(found.name))
}

/// NickServ UNSUSPEND.
fn unsuspend(store: &mut Accounts, account: &str) -> Result<AccountOutcome, AccountError> {
    let Some(found) = store.find(account)? else {
        return Ok(AccountOutcome::NotFound);
    };
    store.unsuspend(&found.name)?;
    Ok(AccountOutcome::Changed(found.name))
}

/// NickServ CERT ADD: the refusals a user can act on are outcomes, the
/// rest errors.
fn add_certificate(
    store: &mut Accounts,
    account: &str,
    fingerprint: &str,
) -> Result<AccountOutcome, AccountError> {
    match store.add_certificate(account, fingerprint) {
        Ok(()) => Ok(AccountOutcome::CertificateAdded),
        Err(AccountError::CertificateTaken) => Ok(AccountOutcome::Taken),
        Err(AccountError::TooMany { .. }) => Ok(AccountOutcome::TooMany),
        Err(error) => Err(error),
    }
}

/// SASL EXTERNAL: the account owning the fingerprint, if it is the one
/// the client named (any case) and is not suspended.
fn certificate_login(
    store: &Accounts,
    fingerprint: &str,
    named: Option<&str>,
) -> Result<AccountOutcome, AccountError> {
    let Some(owner) = store.certificate_owner(fingerprint)? else {
        return Ok(AccountOutcome::Invalid);
    };
    let Some(found) = store.find(&owner)? else {
        return Ok(AccountOutcome::Invalid);
    };
    if let Some(named) = named
        && store
            .find(named)?
            .is_none_or(|other| other.name != found.name)
    {
        return Ok(AccountOutcome::Invalid);
    }
    Ok(if found.suspended.is_some() {
        AccountOutcome::Suspended
    } else {
        AccountOutcome::Valid(found.name)
    })
}

/// NickServ INFO: what may be shown of an account.
fn about(store: &Accounts, account: &str) -> Result<AccountOutcome, AccountError> {
    let Some(found) = store.find(account)? else {
        return Ok(AccountOutcome::About(None));
    };
    let nicks = store.nicks(&found.name)?;
    Ok(AccountOutcome::About(Some(AccountAbout {
        name: found.name,
        created_ms: found.created_ms,
        suspended: found.suspended.is_some(),
        nicks,
    })))
}

/// The configuration file and every TLS certificate, all or nothing.
fn load_all(
    path: &Path,
    certificates: &[(PathBuf, PathBuf)],
) -> Result<(Config, Vec<Arc<tokio_rustls::rustls::ServerConfig>>), ReloadError> {
    let loaded = config::load(path)?;
    let certificates = certificates
        .iter()
        .map(|(cert, key)| net::load_tls(cert, key))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((loaded, certificates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_bans_load_back_and_a_missing_file_is_empty() {
        let path = std::env::temp_dir().join(format!("rookery-bans-{}.toml", std::process::id()));
        let _ = std::fs::remove_file(&path);
        assert_eq!(load_bans(&path).unwrap(), BanList::default());
        let mut bans = BanList::default();
        bans.dline.push(crate::core::BanLine {
            mask: "192.0.2.0/24".into(),
            reason: "spam".into(),
            set_by: "alice".into(),
            set_at: 1,
            expires: None,
        });
        save_bans(&path, &bans).unwrap();
        assert_eq!(load_bans(&path).unwrap(), bans);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn scram_tells_an_unknown_account_from_a_real_one_only_by_a_failed_proof() {
        let dir = std::env::temp_dir().join(format!("rookery-decoy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = Place::Sqlite(dir.join("rookery.db"));
        let naming = Naming {
            casemapping: crate::proto::Casemapping::Ascii,
            max_len: 30,
        };
        let job = |account: &str| AccountJob::ScramSalt {
            account: account.to_owned(),
        };
        let salted = |outcome| match outcome {
            AccountOutcome::ScramSalt { salt, iterations } => (salt, iterations),
            other => panic!("a salt, not {other:?}"),
        };
        let (salt, iterations) = salted(account_job(&path, naming, b"k", None, job("nobody")));
        assert_eq!(iterations, SCRAM_ITERATIONS);
        assert_eq!(salt.len(), 16);
        let (again, _) = salted(account_job(&path, naming, b"k", None, job("NOBODY")));
        assert_eq!(salt, again, "the same decoy each time, in any case");
        let proof = AccountJob::ScramProof {
            account: "nobody".into(),
            auth_message: "n=nobody".into(),
            proof: vec![0; 32],
        };
        assert_eq!(
            account_job(&path, naming, b"k", None, proof),
            AccountOutcome::Invalid
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn verify_accepts_the_right_password_only() {
        let hash = "$argon2id$v=19$m=8,t=1,p=1$cm9va2VyeS10ZXN0LXNhbHQ$yiaiaoZnKPZM0CWZ8NzJYpMiTnaZSktRUpf408FhNKA";
        assert!(verify("hunter2", hash));
        assert!(!verify("hunter3", hash));
        assert!(!verify("hunter2", "not a hash"));
    }
}

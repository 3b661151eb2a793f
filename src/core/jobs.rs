//! The jobs the core hands to the blocking worker ([`crate::worker`]):
//! loading the configuration, checking a password hash, writing the bans
//! file. The core never waits for them; answers come back as events.

use std::path::PathBuf;

use tokio::sync::mpsc;
use tracing::error;

use super::bans::BanList;
use super::lockout::{LoginLockout, OperLockout};
use super::{ClientId, Event, State};

/// Work the core hands off because it blocks or touches files.
#[derive(Debug)]
pub enum AdminRequest {
    /// Load the configuration file again; the answer is `Event::Reloaded`.
    Reload { requested_by: Option<ClientId> },
    /// Check a password against an argon2 hash; the answer is `Event::OperChecked`.
    CheckOper {
        password: String,
        hash: String,
        /// Sends the answer, or a failed one if the check is dropped.
        answer: OperAnswer,
    },
    /// Replace the bans file with these lines.
    SaveBans { path: PathBuf, bans: BanList },
    /// Store a registered room as it is now (ChanServ), replacing what
    /// was stored under its name.
    SaveRoom(crate::accounts::RoomRecord),
    /// Move a registered room's stored registration from `old`, its name
    /// before RENAME, then store it as it is now: one write.
    RenameRoom {
        old: String,
        record: crate::accounts::RoomRecord,
    },
    /// Forget a registered room (ChanServ DROP).
    DropRoom { name: String },
    /// Store an account's read marker in a target (MARKREAD).
    SaveReadMarker(crate::accounts::ReadMarkerRecord),
    /// Read or change the account store; the answer is `Event::AccountAnswered`.
    Account {
        job: AccountJob,
        answer: AccountAnswer,
    },
}

/// A read or change of an account's metadata, done in the order asked by
/// its own task (`metadata_writer.rs`), not the worker's queue.
#[derive(Debug)]
pub enum MetadataRequest {
    /// Store one change; nothing is answered.
    Change {
        account: String,
        change: crate::accounts::MetadataChange,
    },
    /// Read the account's keys for the client that logged in to it; the
    /// answer is `Event::MetadataLoaded`.
    Load { id: ClientId, account: String },
}

/// What the worker does with the account store for a client.
#[derive(Debug)]
pub enum AccountJob {
    /// Check an account's password: `Valid` with its name as registered.
    Verify { account: String, password: String },
    /// Create an account named `name`, owning that nick, with `password`
    /// and, if given, an email address.
    Register {
        name: String,
        password: String,
        email: Option<String>,
    },
    /// VERIFY: the code mailed to a pending account; `Valid` verifies it.
    VerifyCode { account: String, code: String },
    /// Describe an account.
    Info { account: String },
    /// NickServ SUSPEND: `account` cannot log in until unsuspended.
    Suspend {
        account: String,
        reason: String,
        by: String,
    },
    /// NickServ UNSUSPEND.
    Unsuspend { account: String },
    /// NickServ CERT ADD: lets a certificate log in to `account`.
    AddCertificate {
        account: String,
        fingerprint: String,
    },
    /// NickServ CERT DEL.
    RemoveCertificate {
        account: String,
        fingerprint: String,
    },
    /// NickServ CERT LIST.
    ListCertificates { account: String },
    /// SASL EXTERNAL: the account that registered this certificate
    /// fingerprint; `account`, when the client named one, must be it.
    Certificate {
        fingerprint: String,
        account: Option<String>,
    },
    /// Replace an account's password (hash and SCRAM verifiers).
    SetPassword { account: String, password: String },
    /// Turn enforcement of an account's nicks on or off.
    SetEnforce { account: String, on: bool },
    /// Delete an account, once `password` is checked against it.
    Drop { account: String, password: String },
    /// SCRAM-SHA-256, first step: the account's salt and iteration count.
    ScramSalt { account: String },
    /// SCRAM-SHA-256, last step: check the client's proof of the password
    /// for this AuthMessage (RFC 5802 §3).
    ScramProof {
        account: String,
        auth_message: String,
        proof: Vec<u8>,
    },
}

/// Why the client asked, so the answer goes back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountPurpose {
    /// `AUTHENTICATE PLAIN`: answered with 903 or 904.
    Sasl,
    /// `NickServ IDENTIFY`.
    Identify,
    /// `PASS <account>:<password>` while registering.
    Pass,
    /// `NickServ REGISTER`.
    Register,
    /// The `REGISTER` command of `draft/account-registration`.
    RegisterCommand,
    /// Its `VERIFY` command.
    VerifyCommand,
    /// `NickServ INFO`.
    Info,
    /// `NickServ CERT`.
    Certificates,
    /// `NickServ SAREGISTER`, by an operator.
    Saregister,
    /// `NickServ SUSPEND`, by an operator.
    Suspend,
    /// `NickServ UNSUSPEND`, by an operator.
    Unsuspend,
    /// ChanServ `ACCESS ADD` or `TRANSFER`: does the account exist? The
    /// command waiting for it is the client's `chanserv` field.
    ChanServ,
    /// `NickServ SET PASSWORD`, `SET ENFORCE` and `DROP`.
    Change,
}

/// What the worker found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountOutcome {
    /// The password was right (or the account was created): the account's
    /// name as registered.
    Valid(String),
    /// No such account, or the wrong password: the two are not told apart.
    Invalid,
    Suspended,
    /// REGISTER: the name is an account already, or a nick one owns;
    /// CERT ADD: the certificate is another account's.
    Taken,
    /// REGISTER: the password is unacceptable (empty, too long).
    BadPassword,
    /// REGISTER: the email address is not one mail can be sent to.
    BadEmail,
    /// REGISTER: created (by this name as registered) but pending until
    /// VERIFY gives the code mailed to its address.
    Pending(String),
    /// REGISTER: the relay did not take the code's mail; the account was
    /// not kept. The worker logged why.
    MailFailed,
    /// SUSPEND, UNSUSPEND: done, to the account of this name as registered.
    Changed(String),
    /// SUSPEND, UNSUSPEND: there is no such account.
    NotFound,
    /// CERT ADD: done (or the account had it already).
    CertificateAdded,
    /// CERT DEL: whether the account had that certificate.
    CertificateRemoved(bool),
    /// CERT LIST: the fingerprints.
    Certificates(Vec<String>),
    /// CERT ADD: the account has as many certificates as it may.
    TooMany,
    /// REGISTER: the nick cannot be an account name (longer than an
    /// account name may be, `max`).
    BadName {
        max: usize,
    },
    /// SET PASSWORD: the new password is in force.
    PasswordSet,
    /// SET ENFORCE: enforcement is now on (true) or off.
    EnforceSet(bool),
    /// DROP: the account (its name as registered) is gone.
    Dropped(String),
    /// INFO: the account, when it exists.
    About(Option<AccountAbout>),
    /// SCRAM: what the client salts its password with.
    ScramSalt {
        salt: Vec<u8>,
        iterations: u32,
    },
    /// SCRAM: the proof was right; the signature proves the server knew
    /// the verifier.
    ScramProved {
        account: String,
        server_signature: Vec<u8>,
    },
    /// The store could not be read or written; the worker logged why.
    Unavailable,
}

/// What INFO tells about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountAbout {
    pub name: String,
    pub created_ms: i64,
    pub suspended: bool,
    pub nicks: Vec<String>,
}

/// The answer owed for an account job: like [`OperAnswer`], one dropped
/// unanswered answers `Unavailable`, so the waiting client resumes.
#[derive(Debug)]
pub struct AccountAnswer {
    id: ClientId,
    purpose: AccountPurpose,
    core: Option<mpsc::Sender<Event>>,
}

impl AccountAnswer {
    pub fn new(
        id: ClientId,
        purpose: AccountPurpose,
        core: Option<mpsc::Sender<Event>>,
    ) -> AccountAnswer {
        AccountAnswer { id, purpose, core }
    }

    /// Sends the answer to the core.
    pub async fn send(mut self, outcome: AccountOutcome) {
        if let Some(core) = self.core.take() {
            let _ = core.send(self.event(outcome)).await;
        }
    }

    /// The answer as the core receives it, for tests driving the core
    /// without a worker.
    #[cfg(test)]
    pub fn into_event(mut self, outcome: AccountOutcome) -> Event {
        self.core = None;
        self.event(outcome)
    }

    fn event(&self, outcome: AccountOutcome) -> Event {
        Event::AccountAnswered {
            id: self.id,
            purpose: self.purpose,
            outcome,
        }
    }
}

impl Drop for AccountAnswer {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            send_from_drop(core, self.event(AccountOutcome::Unavailable));
        }
    }
}

/// Hands `event` to the core without waiting: a full inbox gets it from a task.
fn send_from_drop(core: mpsc::Sender<Event>, event: Event) {
    if let Err(mpsc::error::TrySendError::Full(event)) = core.try_send(event)
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        runtime.spawn(async move {
            let _ = core.send(event).await;
        });
    }
}

/// The answer owed for an OPER password check. The client's later lines
/// are held until it comes, so one dropped unanswered (the worker stopped
/// with the check queued, or its task was dropped) answers "not valid"
/// and the client is resumed.
#[derive(Debug)]
pub struct OperAnswer {
    id: ClientId,
    oper: String,
    core: Option<mpsc::Sender<Event>>,
}

impl OperAnswer {
    pub fn new(id: ClientId, oper: String, core: Option<mpsc::Sender<Event>>) -> OperAnswer {
        OperAnswer { id, oper, core }
    }

    /// Sends the answer to the core.
    pub async fn send(mut self, valid: bool) {
        if let Some(core) = self.core.take() {
            let _ = core.send(self.event(valid)).await;
        }
    }

    /// Drops the check without answering: the core answered it itself.
    fn disarm(mut self) {
        self.core = None;
    }

    /// The answer as the core receives it, for a caller that hands it over
    /// itself (tests driving the core without a worker).
    #[cfg(test)]
    pub fn into_event(mut self, valid: bool) -> Event {
        self.core = None;
        self.event(valid)
    }

    fn event(&self, valid: bool) -> Event {
        Event::OperChecked {
            id: self.id,
            oper: self.oper.clone(),
            valid,
        }
    }
}

impl Drop for OperAnswer {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            send_from_drop(core, self.event(false));
        }
    }
}

/// A configuration the admin worker loaded for REHASH.
#[derive(Debug)]
pub struct Reloaded {
    pub config: std::sync::Arc<crate::config::Config>,
    /// Settings the file changed that take effect at a restart only; the
    /// running values were kept ([`crate::config::keep_restart_only`]).
    pub kept: Vec<&'static str>,
}

/// Administration state owned by the core.
#[derive(Debug, Default)]
pub struct AdminState {
    /// The admin worker; absent in core tests.
    pub worker: Option<mpsc::UnboundedSender<AdminRequest>>,
    /// The file REHASH reloads, when the server was started from one.
    pub config_file: Option<PathBuf>,
    pub bans: BanList,
    pub(crate) oper_lockout: OperLockout,
    /// Logins to accounts, per account and per address.
    pub(crate) login_lockout: LoginLockout,
    /// Account jobs handed to the worker and not answered yet; at most
    /// [`MAX_ACCOUNT_JOBS`], so the worker's queue cannot grow without end.
    pub(crate) account_jobs: usize,
    /// The address of each client with an account job in flight (one per
    /// client, since the client waits), so that one address may hold only
    /// [`MAX_ACCOUNT_JOBS_PER_ADDRESS`] of them; at most [`MAX_ACCOUNT_JOBS`].
    pub(crate) account_job_addresses: Vec<(super::ClientId, crate::proto::AddressKey)>,
    /// The account metadata task's queue (bounded); absent in core tests.
    pub metadata: Option<mpsc::Sender<MetadataRequest>>,
    /// Ban lines changed by other nodes and not written yet: written at
    /// the next tick ([`save_unsaved_bans`]), so a stream of peers'
    /// K-lines costs one copy and one write a second, not one each.
    pub(crate) bans_unsaved: bool,
}

/// Account jobs waiting for the worker at most; past it a client is told
/// to try again. Each costs a password hash at two at a time, so more
/// would only wait longer.
pub const MAX_ACCOUNT_JOBS: usize = 64;

/// Account jobs one address (by the IPv6 prefix rule) may have in flight:
/// a few busy connections must not fill the worker's queue for everyone.
pub const MAX_ACCOUNT_JOBS_PER_ADDRESS: usize = 4;

impl AdminState {
    /// The state a server starts with under `config`.
    pub fn for_config(config: &crate::config::Config) -> AdminState {
        AdminState {
            login_lockout: LoginLockout::new(&config.accounts),
            ..AdminState::default()
        }
    }

    /// Queues a read or change of account metadata without waiting; one
    /// the full queue refuses is dropped and logged.
    pub fn request_metadata(&self, request: MetadataRequest) {
        let Some(queue) = &self.metadata else {
            return;
        };
        if let Err(refused) = queue.try_send(request) {
            error!("account metadata: {refused}, a request dropped");
        }
    }

    /// Hands `request` to the worker; false when there is none.
    pub fn request(&self, request: AdminRequest) -> bool {
        let refused = match &self.worker {
            Some(worker) => worker.send(request).err().map(|refused| refused.0),
            None => Some(request),
        };
        let sent = refused.is_none();
        // The caller answers a refused request itself.
        match refused {
            Some(AdminRequest::CheckOper { answer, .. }) => answer.disarm(),
            Some(AdminRequest::Account { mut answer, .. }) => answer.core = None,
            _ => {}
        }
        if !sent {
            error!("the admin worker is not running");
        }
        sent
    }
}

/// Writes the bans to the configured file, off the core.
pub fn save_bans(state: &mut State) {
    state.admin.bans_unsaved = false;
    let path = state.config.server.bans_file.clone();
    if path.as_os_str().is_empty() {
        return;
    }
    let bans = state.admin.bans.clone();
    state.admin.request(AdminRequest::SaveBans { path, bans });
}

/// Notes that the ban lines changed on another node's word; the next tick
/// writes them.
pub fn save_bans_later(state: &mut State) {
    state.admin.bans_unsaved = true;
}

/// Writes the ban lines if other nodes changed them since the last write.
pub fn save_unsaved_bans(state: &mut State) {
    if state.admin.bans_unsaved {
        save_bans(state);
    }
}

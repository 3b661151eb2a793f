//! The jobs the core hands to the blocking worker ([`crate::admin`]):
//! loading the configuration, checking a password hash, writing the bans
//! file. The core never waits for them; answers come back as events.

use std::path::PathBuf;

use tokio::sync::mpsc;
use tracing::error;

use super::bans::BanList;
use super::oper_lockout::OperLockout;
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
        let Some(core) = self.core.take() else {
            return;
        };
        // No waiting in a drop: a full inbox gets the answer from a task.
        if let Err(mpsc::error::TrySendError::Full(event)) = core.try_send(self.event(false)) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = core.send(event).await;
                });
            }
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
    pub oper_lockout: OperLockout,
}

impl AdminState {
    /// Hands `request` to the worker; false when there is none.
    pub fn request(&self, request: AdminRequest) -> bool {
        let refused = match &self.worker {
            Some(worker) => worker.send(request).err().map(|refused| refused.0),
            None => Some(request),
        };
        let sent = refused.is_none();
        // The caller answers a refused request itself.
        if let Some(AdminRequest::CheckOper { answer, .. }) = refused {
            answer.disarm();
        }
        if !sent {
            error!("the admin worker is not running");
        }
        sent
    }
}

/// Writes the bans to the configured file, off the core.
pub fn save_bans(state: &mut State) {
    let path = state.config.server.bans_file.clone();
    if path.as_os_str().is_empty() {
        return;
    }
    let bans = state.admin.bans.clone();
    state.admin.request(AdminRequest::SaveBans { path, bans });
}

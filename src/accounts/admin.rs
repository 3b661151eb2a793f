//! `rookery accounts list` and `show`: accounts as an administrator reads
//! them. Nothing secret is printed: no hash, no SCRAM verifier.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::{Account, AccountError, Accounts};

/// Accounts read from the database per query while listing.
const LIST_PAGE: usize = 500;

/// Why a listing stopped.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error("cannot write: {0}")]
    Write(#[from] std::io::Error),
}

/// One line per account in name order (name, created, status), tab
/// separated; returns how many.
pub fn list(store: &Accounts, out: &mut impl Write) -> Result<usize, AdminError> {
    let mut listed = 0;
    let mut after: Option<String> = None;
    loop {
        let page = store.list(after.as_deref(), LIST_PAGE)?;
        for account in &page {
            writeln!(
                out,
                "{}\t{}\t{}",
                account.name,
                format_time(account.created_ms),
                status(account)
            )?;
        }
        listed += page.len();
        match page.last() {
            Some(last) if page.len() == LIST_PAGE => after = Some(last.name.clone()),
            _ => return Ok(listed),
        }
    }
}

/// Everything about one account but its secrets, one `field: value` per
/// line.
pub fn show(store: &Accounts, account: &Account, out: &mut impl Write) -> Result<(), AdminError> {
    writeln!(out, "account: {}", account.name)?;
    writeln!(out, "created: {}", format_time(account.created_ms))?;
    writeln!(
        out,
        "email: {}",
        account.email.as_deref().unwrap_or("(none)")
    )?;
    match &account.suspended {
        None => writeln!(out, "status: {}", status(account))?,
        Some(suspension) => writeln!(
            out,
            "status: suspended at {} by {}: {}",
            format_time(suspension.at_ms),
            suspension.by,
            suspension.reason
        )?,
    }
    writeln!(out, "nicks: {}", store.nicks(&account.name)?.join(" "))?;
    let certificates = store.certificates(&account.name)?;
    if certificates.is_empty() {
        writeln!(out, "certificates: (none)")?;
    } else {
        writeln!(out, "certificates: {}", certificates.join(" "))?;
    }
    Ok(())
}

/// One word for what the account may do: `suspended`, `pending` (its
/// mailed code not given yet) or `active`.
fn status(account: &Account) -> &'static str {
    match (&account.suspended, account.pending) {
        (Some(_), _) => "suspended",
        (None, true) => "pending",
        (None, false) => "active",
    }
}

/// RFC 3339 in UTC, to the second.
fn format_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

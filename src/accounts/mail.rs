//! Verification codes and the mail that carries them: a random code,
//! stored only as its hash, sent through the configured relay by a
//! minimal SMTP client (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT). The
//! relay is trusted to deliver onward (a local MTA, which does TLS to the
//! world); this client speaks plain SMTP to it. Blocking: the worker runs
//! it off the core.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// Characters of a code: the URL-safe base64 alphabet, 6 bits each.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// A code's length: 48 random bits, against a handful of guesses.
pub const CODE_LEN: usize = 8;
/// How long the relay may take to connect or to answer one command.
const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest reply line read from the relay, and lines in one reply.
const MAX_REPLY_LINE: usize = 1024;
const MAX_REPLY_LINES: usize = 64;

/// A new random verification code.
pub fn new_code() -> String {
    let mut bytes = [0u8; CODE_LEN];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte & 63)]))
        .collect()
}

/// The form a code is stored and compared in.
pub fn code_hash(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// Where and as whom verification mail is sent.
#[derive(Clone, Debug)]
pub struct Relay {
    /// `host:port`.
    pub address: String,
    /// The sender address.
    pub from: String,
    /// The network's name, for the subject and text.
    pub network: String,
    /// The server's name, for EHLO.
    pub server_name: String,
}

/// Why a mail was not accepted; the text names the relay's answer.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot reach the relay: {0}")]
    Connect(std::io::Error),
    #[error("talking to the relay: {0}")]
    Io(#[from] std::io::Error),
    #[error("the relay refused {command}: {reply}")]
    Refused {
        command: &'static str,
        reply: String,
    },
}

impl Relay {
    /// Mails `code` for `account` to `to`, through the relay.
    pub fn send_code(&self, to: &str, account: &str, code: &str) -> Result<(), MailError> {
        let stream = self.connect()?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        expect(&mut reader, "greeting", '2')?;
        let steps: [(&'static str, String, char); 4] = [
            ("EHLO", format!("EHLO {}", self.server_name), '2'),
            ("MAIL", format!("MAIL FROM:<{}>", self.from), '2'),
            ("RCPT", format!("RCPT TO:<{to}>"), '2'),
            ("DATA", "DATA".to_owned(), '3'),
        ];
        for (command, line, wanted) in steps {
            write!(writer, "{line}\r\n")?;
            expect(&mut reader, command, wanted)?;
        }
        writer.write_all(dot_stuffed(&self.message(to, account, code)).as_bytes())?;
        writer.write_all(b".\r\n")?;
        expect(&mut reader, "the message", '2')?;
        // Accepted; a relay that does not say goodbye changes nothing.
        let _ = writer.write_all(b"QUIT\r\n");
        Ok(())
    }

    fn connect(&self) -> Result<TcpStream, MailError> {
        let addresses = self.address.to_socket_addrs().map_err(MailError::Connect)?;
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for address in addresses {
            match TcpStream::connect_timeout(&address, RELAY_TIMEOUT) {
                Ok(stream) => {
                    stream.set_read_timeout(Some(RELAY_TIMEOUT))?;
                    stream.set_write_timeout(Some(RELAY_TIMEOUT))?;
                    return Ok(stream);
                }
                Err(error) => last = error,
            }
        }
        Err(MailError::Connect(last))
    }

    /// The plain-text message, headers and body, lines ending in CRLF.
    fn message(&self, to: &str, account: &str, code: &str) -> String {
        let network = &self.network;
        let lines = [
            format!("From: {}", self.from),
            format!("To: {to}"),
            format!("Subject: Your {network} account"),
            format!("Date: {}", chrono::Utc::now().to_rfc2822()),
            "MIME-Version: 1.0".to_owned(),
            "Content-Type: text/plain; charset=utf-8".to_owned(),
            "Content-Transfer-Encoding: 8bit".to_owned(),
            String::new(),
            format!("The account {account} was registered on {network} with this address."),
            String::new(),
            format!("Its verification code is: {code}"),
            String::new(),
            "To finish, send this from the connection you registered on:".to_owned(),
            String::new(),
            format!("    /quote VERIFY {account} {code}"),
            String::new(),
            "The code expires in 24 hours. If you did not register, ignore this mail.".to_owned(),
        ];
        lines.iter().map(|line| format!("{line}\r\n")).collect()
    }
}

/// RFC 5321 §4.5.2: a line starting with a dot gets another.
fn dot_stuffed(message: &str) -> String {
    message
        .split_inclusive("\r\n")
        .map(|line| match line.starts_with('.') {
            true => format!(".{line}"),
            false => line.to_owned(),
        })
        .collect()
}

/// Reads one reply (all its lines) and checks its first digit.
fn expect<R: BufRead>(
    reader: &mut R,
    command: &'static str,
    wanted: char,
) -> Result<(), MailError> {
    for _ in 0..MAX_REPLY_LINES {
        let mut line = String::new();
        let read = <&mut R as Read>::take(reader, MAX_REPLY_LINE as u64).read_line(&mut line)?;
        let line = line.trim_end();
        let refused = || MailError::Refused {
            command,
            reply: line.to_owned(),
        };
        if read == 0 || line.len() < 3 {
            return Err(refused());
        }
        // "250-..." continues the reply; "250 ..." or "250" ends it.
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        return match line.starts_with(wanted) {
            true => Ok(()),
            false => Err(refused()),
        };
    }
    Err(MailError::Refused {
        command,
        reply: "a reply of too many lines".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_url_safe_and_hashed() {
        let (a, b) = (new_code(), new_code());
        assert_eq!(a.len(), CODE_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)), "{a}");
        assert_eq!(code_hash(&a), code_hash(&a));
        assert_ne!(code_hash(&a), code_hash(&b));
    }

    #[test]
    fn lines_starting_with_a_dot_are_stuffed() {
        assert_eq!(dot_stuffed("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n");
    }

    #[test]
    fn a_multi_line_reply_is_read_to_its_end() {
        let mut replies = "250-relay\r\n250-SIZE 1000\r\n250 OK\r\n550 no\r\n".as_bytes();
        expect(&mut replies, "EHLO", '2').unwrap();
        let refused = expect(&mut replies, "RCPT", '2').unwrap_err();
        assert_eq!(refused.to_string(), "the relay refused RCPT: 550 no");
    }
}

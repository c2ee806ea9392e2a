//! The report of critical errors: collected during the run (each problem is
//! also logged as an error) and mailed at the end through SMTP.

use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message, SmtpTransport, Transport};
use tracing::{error, info};

use crate::settings::{ReportSettings, Settings};

/// Critical lines of this run, in the order they happened; blocks of lines
/// about one repository stay together when several run at once.
#[derive(Debug, Default)]
pub struct Report {
    lines: Mutex<Vec<String>>,
}

impl Report {
    /// Log lines as errors and add them to the report, as one block. Once
    /// the run was asked to stop (Ctrl-C), complaints are what stopping
    /// the git processes left: logged at debug level only, not reported.
    pub fn critical_block(&self, lines: &[String]) {
        if grokmirror::stop::requested().is_some() {
            for line in lines {
                tracing::debug!("while stopping: {line}");
            }
            return;
        }
        let mut all = self.lines.lock().expect("report poisoned");
        for line in lines {
            error!("{line}");
            all.push(line.clone());
        }
    }

    /// Log one line as an error and add it to the report.
    pub fn critical(&self, line: impl Into<String>) {
        self.critical_block(&[line.into()]);
    }

    /// Add a line to the report without logging it (it is shown another
    /// way).
    pub fn note(&self, line: impl Into<String>) {
        self.lines
            .lock()
            .expect("report poisoned")
            .push(line.into());
    }

    /// Whether anything critical happened.
    pub fn is_empty(&self) -> bool {
        self.lines.lock().expect("report poisoned").is_empty()
    }

    /// The report's text.
    pub fn text(&self) -> String {
        let lines = self.lines.lock().expect("report poisoned");
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }
}

/// This host's name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Why the report could not be mailed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `report_from` or `report_to` holds something that is no address.
    #[error("{key}: {text:?} is not a mail address")]
    BadAddress {
        /// The setting (`report_from`, `report_to`).
        key: &'static str,
        /// The address as written.
        text: String,
        /// Why it does not parse.
        #[source]
        source: lettre::address::AddressError,
    },
    /// `report_to` is empty.
    #[error("report_to names no address")]
    NoRecipient,
    /// `report_mailhost` has a port that is no number.
    #[error("report_mailhost {mailhost:?}: bad port {port:?}")]
    BadPort {
        /// The setting as written.
        mailhost: String,
        /// The port part of it.
        port: String,
        /// Why it does not parse.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The message could not be put together.
    #[error(transparent)]
    Message(#[from] lettre::error::Error),
    /// The mail host did not take the message.
    #[error("cannot send the report through {mailhost}: {source}")]
    Send {
        /// `report_mailhost`.
        mailhost: String,
        /// What SMTP said.
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

/// Parse one address (`key` is the setting it comes from). A bare local
/// part (`root`, what grokmirror's defaults are) is qualified with this
/// host's name, as a local mail transfer agent would qualify it: SMTP needs
/// a domain.
fn mailbox(key: &'static str, text: &str, host: &str) -> Result<Mailbox, Error> {
    let text = text.trim();
    let parse_error = match text.parse::<Mailbox>() {
        Ok(m) => return Ok(m),
        Err(e) => e,
    };
    if !text.contains('@') && !text.contains('<') {
        if let Ok(addr) = Address::new(text, host) {
            return Ok(Mailbox::new(None, addr));
        }
    }
    Err(Error::BadAddress {
        key,
        text: text.to_string(),
        source: parse_error,
    })
}

/// `host` or `host:port` (port 25 by default), split as Python's smtplib
/// splits it (only when there is exactly one colon).
fn host_and_port(mailhost: &str) -> Result<(String, u16), Error> {
    let mailhost = mailhost.trim();
    if mailhost.matches(':').count() == 1 {
        let (host, port) = mailhost.split_once(':').expect("one colon");
        let port = port.parse::<u16>().map_err(|source| Error::BadPort {
            mailhost: mailhost.to_string(),
            port: port.to_string(),
            source,
        })?;
        return Ok((host.to_string(), port));
    }
    Ok((mailhost.to_string(), 25))
}

/// Build the report message.
pub fn message(settings: &ReportSettings, subject: &str, body: &str) -> Result<Message, Error> {
    let host = hostname();
    let mut builder = Message::builder()
        .from(mailbox("report_from", &settings.from, &host)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    let mut any = false;
    for to in settings.to.split(',').filter(|t| !t.trim().is_empty()) {
        builder = builder.to(mailbox("report_to", to, &host)?);
        any = true;
    }
    if !any {
        return Err(Error::NoRecipient);
    }
    Ok(builder.body(body.to_string())?)
}

/// Mail the report. Failures are returned for the caller to log; they
/// never make the run fail.
pub fn send(settings: &ReportSettings, subject: &str, body: &str) -> Result<(), Error> {
    let msg = message(settings, subject, body)?;
    let (host, port) = host_and_port(&settings.mailhost)?;
    // No TLS: a local mail relay, as grokmirror's smtplib.SMTP(mailhost).
    let transport = SmtpTransport::builder_dangerous(host.as_str())
        .port(port)
        .hello_name(ClientId::Domain(hostname()))
        .timeout(Some(Duration::from_secs(60)))
        .build();
    transport
        .send(&msg)
        .map(|_| ())
        .map_err(|source| Error::Send {
            mailhost: settings.mailhost.clone(),
            source,
        })
}

/// Mail the report to `[fsck] report_to`, logging (not returning) a
/// failure: the run's work is done either way.
pub fn mail(settings: &Settings, report: &Report) {
    let subject = settings.report.subject.clone().unwrap_or_else(|| {
        format!(
            "grok-fsck errors on {} ({})",
            hostname(),
            settings.config_path.display()
        )
    });
    match send(&settings.report, &subject, &report.text()) {
        Ok(()) => info!("Sent the report to {}", settings.report.to),
        // Shown even without -v: nobody else will tell the operator.
        Err(e) => tracing::error!("{e}; the errors are in the log"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            mailbox("report_to", "root", "box.example")
                .unwrap()
                .to_string(),
            "root@box.example"
        );
        assert_eq!(
            mailbox("report_to", " Mirror <m@example.org>", "h")
                .unwrap()
                .email
                .to_string(),
            "m@example.org"
        );
        let err = mailbox("report_from", "not an address", "h").unwrap_err();
        assert_eq!(
            err.to_string(),
            "report_from: \"not an address\" is not a mail address"
        );
        assert_eq!(
            host_and_port("localhost").unwrap(),
            ("localhost".into(), 25)
        );
        assert_eq!(
            host_and_port("127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525)
        );
        assert_eq!(
            host_and_port("h:x").unwrap_err().to_string(),
            "report_mailhost \"h:x\": bad port \"x\""
        );
    }

    #[test]
    fn message_headers() {
        let s = ReportSettings {
            to: "a@example.org, b@example.org".into(),
            from: "fsck@example.org".into(),
            subject: None,
            mailhost: "localhost".into(),
        };
        let m = message(&s, "errors", "line\n").unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("From: fsck@example.org"), "{raw}");
        assert!(raw.contains("To: a@example.org, b@example.org"), "{raw}");
        assert!(raw.contains("Subject: errors"), "{raw}");
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn report_text() {
        let r = Report::default();
        assert!(r.is_empty());
        r.critical_block(&["/x.git reports errors:".into(), "\tmissing blob 1".into()]);
        assert_eq!(r.text(), "/x.git reports errors:\n\tmissing blob 1\n");
    }
}

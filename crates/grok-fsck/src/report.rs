//! The report of critical errors: collected during the run (each problem is
//! also logged as an error) and mailed at the end through SMTP.

use std::sync::Mutex;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message, SmtpTransport, Transport};
use tracing::error;

use crate::settings::ReportSettings;

/// Critical lines of this run, in the order they happened; blocks of lines
/// about one repository stay together when several run at once.
#[derive(Debug, Default)]
pub struct Report {
    lines: Mutex<Vec<String>>,
}

impl Report {
    /// Log lines as errors and add them to the report, as one block.
    pub fn critical_block(&self, lines: &[String]) {
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

/// Parse one address. A bare local part (`root`, what grokmirror's
/// defaults are) is qualified with this host's name, as a local mail
/// transfer agent would qualify it: SMTP needs a domain.
fn mailbox(text: &str, host: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    if let Ok(m) = text.parse::<Mailbox>() {
        return Ok(m);
    }
    if !text.contains('@') && !text.contains('<') {
        if let Ok(addr) = Address::new(text, host) {
            return Ok(Mailbox::new(None, addr));
        }
    }
    Err(format!("{text:?} is not a mail address"))
}

/// `host` or `host:port` (port 25 by default), split as Python's smtplib
/// splits it (only when there is exactly one colon).
fn host_and_port(mailhost: &str) -> Result<(String, u16), String> {
    let mailhost = mailhost.trim();
    if mailhost.matches(':').count() == 1 {
        let (host, port) = mailhost.split_once(':').expect("one colon");
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("report_mailhost {mailhost:?}: bad port {port:?}"))?;
        return Ok((host.to_string(), port));
    }
    Ok((mailhost.to_string(), 25))
}

/// Build the report message.
pub fn message(settings: &ReportSettings, subject: &str, body: &str) -> Result<Message, String> {
    let host = hostname();
    let mut builder = Message::builder()
        .from(mailbox(&settings.from, &host).map_err(|e| format!("report_from: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    let mut any = false;
    for to in settings.to.split(',').filter(|t| !t.trim().is_empty()) {
        builder = builder.to(mailbox(to, &host).map_err(|e| format!("report_to: {e}"))?);
        any = true;
    }
    if !any {
        return Err("report_to names no address".into());
    }
    builder.body(body.to_string()).map_err(|e| e.to_string())
}

/// Mail the report. Failures are returned for the caller to log; they
/// never make the run fail.
pub fn send(settings: &ReportSettings, subject: &str, body: &str) -> Result<(), String> {
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
        .map_err(|e| format!("cannot send the report through {}: {e}", settings.mailhost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            mailbox("root", "box.example").unwrap().to_string(),
            "root@box.example"
        );
        assert_eq!(
            mailbox(" Mirror <m@example.org>", "h")
                .unwrap()
                .email
                .to_string(),
            "m@example.org"
        );
        assert!(mailbox("not an address", "h").is_err());
        assert_eq!(
            host_and_port("localhost").unwrap(),
            ("localhost".into(), 25)
        );
        assert_eq!(
            host_and_port("127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525)
        );
        assert!(host_and_port("h:x").is_err());
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

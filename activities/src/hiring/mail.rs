//! Mail over SMTP (lettre): `VBRIDGE_SMTP_URL` (`smtp://host:port` in
//! plain text, as a local sink speaks; `smtp://…?tls=required` for
//! STARTTLS; `smtps://user:pass@host` for TLS from the start) and
//! `VBRIDGE_MAIL_FROM`. Each message has a plain-text and an HTML part,
//! rendered by askama from `activities/templates/mail/`, and a Message-ID
//! derived from its dedup key, so that a receiver can tell a resend (the
//! one window: sent, then a crash before the row was kept) for what it is.

use super::{Contact, MailRow, StartRow, recipient_hash};
use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use vbridge_proto::MailRequest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("refused for good: {0}")]
    Rejected(String),
    #[error("worth retrying: {0}")]
    Transient(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Template)]
#[template(path = "mail/invite.txt")]
struct InviteText<'a> {
    link: &'a str,
    reminder: bool,
    retake: bool,
}

#[derive(Template)]
#[template(path = "mail/invite.html")]
struct InviteHtml<'a> {
    link: &'a str,
    reminder: bool,
    retake: bool,
}

/// The recruiter's notices (`bypass_notice`, `pending_notice`).
#[derive(Template)]
#[template(path = "mail/recruiter.txt")]
struct BypassText<'a> {
    req: &'a MailRequest,
    pending: bool,
}

#[derive(Template)]
#[template(path = "mail/recruiter.html")]
struct BypassHtml<'a> {
    req: &'a MailRequest,
    pending: bool,
}

impl Mailer {
    /// From `VBRIDGE_SMTP_URL` and `VBRIDGE_MAIL_FROM`; the error names which.
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("VBRIDGE_SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| format!("VBRIDGE_MAIL_FROM: {e}"))?;
        Ok(Mailer { transport, from })
    }

    /// The Message-ID of a dedup key: the same on every attempt.
    fn message_id(&self, key: &str) -> String {
        let domain = self.from.email.domain().to_owned();
        format!("<vb-{}@{domain}>", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
    }

    /// The recruiter's notice of an interview booked while the gate was closed.
    pub async fn send_notice(&self, req: &MailRequest, to: &str) -> Result<MailRow, MailError> {
        let pending = req.kind == vbridge_activity_defs::mail_kind::PENDING;
        let text = BypassText { req, pending }.render().map_err(|e| MailError::Rejected(format!("template: {e}")))?;
        let html = BypassHtml { req, pending }.render().map_err(|e| MailError::Rejected(format!("template: {e}")))?;
        let subject = if req.kind == vbridge_activity_defs::mail_kind::PENDING {
            format!("Identity verification still open before the interview: application {}", req.application_id)
        } else {
            format!("Interview booked before identity verification: application {}", req.application_id)
        };
        self.deliver(req, to, &subject, text, html).await
    }

    /// Render and send one message to the candidate.
    pub async fn send(&self, req: &MailRequest, to: &Contact, start: &StartRow) -> Result<MailRow, MailError> {
        let reminder = req.kind == "reminder";
        let retake = req.kind == vbridge_activity_defs::mail_kind::RETAKE;
        let subject = match req.kind.as_str() {
            "reminder" => "Reminder: please verify your identity",
            "reinvite" => "A new link to verify your identity",
            "retake" => "Please take your identity verification again",
            _ => "Please verify your identity",
        };
        let render = |r: askama::Result<String>| r.map_err(|e| MailError::Rejected(format!("template: {e}")));
        let text = render(InviteText { link: &start.link, reminder, retake }.render())?;
        let html = render(InviteHtml { link: &start.link, reminder, retake }.render())?;
        self.deliver(req, &to.email, subject, text, html).await
    }

    /// Send one message with its two parts and the key's Message-ID.
    async fn deliver(
        &self,
        req: &MailRequest,
        to: &str,
        subject: &str,
        text: String,
        html: String,
    ) -> Result<MailRow, MailError> {
        let rcpt = to.parse::<Mailbox>().map_err(|e| MailError::Rejected(format!("the address: {e}")))?;
        let message_id = self.message_id(&req.key);
        let msg = Message::builder()
            .from(self.from.clone())
            .to(rcpt)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| MailError::Rejected(format!("the message: {e}")))?;
        self.transport.send(msg).await.map_err(|e| {
            if e.is_permanent() {
                MailError::Rejected(format!("the mail server refused it: {e}"))
            } else {
                MailError::Transient(format!("the mail server: {e}"))
            }
        })?;
        Ok(MailRow { message_id, recipient_hash: recipient_hash(to) })
    }
}

//! The hiring loop's settings (docs/contract.md §8, docs/hiring.md): the
//! ATSs' webhook secrets (a route without one answers 404), where
//! verifications are started, and the mail server.

use super::providers::secrets;
use super::{ConfigError, Settings, http_url};
use crate::intake::ats::AtsHooks;
use vbridge_activities::hiring::start::{ProviderApi, StartProvider};
use vbridge_core::intake::ats::{Ashby, AtsAdapter, Greenhouse};

/// What the hiring loop is configured with.
#[derive(Clone, Default)]
pub struct Hiring {
    /// Where verifications are started (none: a trigger's start fails for
    /// good, recorded `verification_start_failed`).
    pub start: Option<ProviderApi>,
    /// `VBRIDGE_SMTP_URL` and `VBRIDGE_MAIL_FROM` (none: nothing is mailed;
    /// each invite is recorded as not mailed, `mail_not_configured`).
    pub mail: Option<(String, String)>,
    pub recruiter_email: Option<String>,
    /// How often the ATS's interviews are polled (Greenhouse only: the
    /// others push them); none: not polled.
    pub interview_poll: Option<std::time::Duration>,
}

pub fn ats_hooks(s: &Settings) -> Result<AtsHooks, ConfigError> {
    let mut adapters: Vec<Box<dyn AtsAdapter>> = vec![];
    if let Some(secrets) = secrets("VBRIDGE_GREENHOUSE_WEBHOOK_SECRET", &s.greenhouse_webhook_secret)? {
        adapters.push(Box::new(Greenhouse::new(secrets)));
    }
    if let Some(secrets) = secrets("VBRIDGE_ASHBY_WEBHOOK_SECRET", &s.ashby_webhook_secret)? {
        adapters.push(Box::new(Ashby::new(secrets)));
    }
    Ok(AtsHooks::new(adapters))
}

pub fn hiring(s: &Settings) -> Result<Hiring, ConfigError> {
    let start = match s.start_provider.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(name) => {
            let provider = StartProvider::parse(name).ok_or_else(|| ConfigError::Invalid {
                name: "VBRIDGE_START_PROVIDER",
                problem: format!("\"{name}\" is not persona or veriff"),
            })?;
            let (url_name, url, key_name, key) = match provider {
                StartProvider::Persona => {
                    ("VBRIDGE_PERSONA_API_URL", &s.persona_api_url, "VBRIDGE_PERSONA_API_KEY", &s.persona_api_key)
                }
                StartProvider::Veriff => {
                    ("VBRIDGE_VERIFF_API_URL", &s.veriff_api_url, "VBRIDGE_VERIFF_API_KEY", &s.veriff_api_key)
                }
            };
            let key = key.as_ref().map(|k| k.0.trim().to_owned()).filter(|k| !k.is_empty()).ok_or_else(|| {
                ConfigError::Invalid { name: key_name, problem: format!("VBRIDGE_START_PROVIDER={name} needs it") }
            })?;
            Some(ProviderApi { provider, url: http_url(url_name, url.clone())?, key })
        }
    };
    let mail = match &s.smtp_url {
        None => None,
        Some(url) => {
            // Checked now, so that a typo fails at start, not at the first invite.
            vbridge_activities::hiring::mail::Mailer::new(&url.0, &s.mail_from)
                .map_err(|problem| ConfigError::Invalid { name: "VBRIDGE_SMTP_URL", problem })?;
            Some((url.0.clone(), s.mail_from.clone()))
        }
    };
    let recruiter_email = s.recruiter_email.clone().filter(|e| !e.trim().is_empty());
    if let Some(e) = &recruiter_email
        && vbridge_core::intake::ats::Email::parse(e).is_none()
    {
        return Err(ConfigError::Invalid { name: "VBRIDGE_RECRUITER_EMAIL", problem: "not an email address".into() });
    }
    let interview_poll =
        (s.interview_poll_seconds > 0).then(|| std::time::Duration::from_secs(s.interview_poll_seconds));
    Ok(Hiring { start, mail, recruiter_email, interview_poll })
}

impl super::Config {
    /// The hiring activities this configuration makes, on `outreach`'s rows.
    pub fn hiring_activities(
        &self,
        outreach: std::sync::Arc<dyn vbridge_activities::hiring::Outreach>,
    ) -> anyhow::Result<vbridge_activities::hiring::HiringActivities> {
        let mailer = match &self.hiring.mail {
            Some((url, from)) => {
                Some(vbridge_activities::hiring::mail::Mailer::new(url, from).map_err(anyhow::Error::msg)?)
            }
            None => None,
        };
        let starter = vbridge_activities::hiring::start::Starter {
            api: self.hiring.start.clone(),
            http: reqwest::Client::new(),
            timeout: std::time::Duration::from_secs(30),
        };
        let recruiter = self.hiring.recruiter_email.clone();
        Ok(vbridge_activities::hiring::HiringActivities { outreach, starter, mailer, recruiter })
    }
}

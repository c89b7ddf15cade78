//! What the inference operations share: the routing decision, model-name and
//! sampling validation, and the clock.

use crate::error::ApiError;
use orchestrator::Tier;
use orchestrator::capability::Need;
use orchestrator::registry::ModelHandle;
use orchestrator::router::{Classification, Conversation};
use orchestrator::selector::{AUTO, ModelSelector};
use std::sync::Arc;

/// Who wrote a message, as far as the router cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// System or developer instructions: part of the sticky key, not scored.
    System,
    /// The end user: the last user turn is scored, earlier ones are context.
    User,
    /// Assistant, tool and function messages: not read.
    Other,
}

/// The texts of a chat that the router reads, owned (a message's text may be
/// assembled from parts): system messages and user turns, in order.
/// Assistant and tool messages, an assistant prefill after the last user
/// turn included, are not read.
#[derive(Debug, Clone, Default)]
pub struct ChatTexts {
    system: Vec<String>,
    users: Vec<String>,
}

impl ChatTexts {
    /// The router's texts of `messages`, in order.
    pub fn of(messages: impl IntoIterator<Item = (Speaker, String)>) -> Self {
        let mut texts = Self::default();
        for (speaker, text) in messages {
            match speaker {
                Speaker::System => texts.system.push(text),
                Speaker::User => texts.users.push(text),
                Speaker::Other => {}
            }
        }
        texts
    }

    /// The last user turn; empty when there is none.
    pub fn last(&self) -> &str {
        self.users.last().map_or("", String::as_str)
    }

    /// Calls `f` with these texts as a [`Conversation`].
    pub fn with<R>(&self, f: impl FnOnce(&Conversation<'_>) -> R) -> R {
        let system: Vec<&str> = self.system.iter().map(String::as_str).collect();
        let users: Vec<&str> = self.users.iter().map(String::as_str).collect();
        let (last, earlier) = users.split_last().map_or(("", &[][..]), |(l, e)| (*l, e));
        f(&Conversation {
            system: &system,
            earlier,
            last,
        })
    }
}

/// The model a request goes to, and the classification behind it.
#[derive(Debug)]
pub struct Routing {
    /// The model that serves the request.
    pub model: Arc<ModelHandle>,
    /// The router's view of the prompt (always when `auto`; on request otherwise).
    pub classification: Option<Classification>,
    /// Whether the router chose the model.
    pub routed: bool,
}

impl Routing {
    /// Classifies at most once: when `requested` is `auto`, or when the caller
    /// reports the classification anyway (`always_classify`).
    pub fn decide(
        selector: &ModelSelector,
        requested: &str,
        text: &str,
        always_classify: bool,
    ) -> Result<Self, ApiError> {
        // A single prompt continues no conversation: it is remembered under
        // no owner, which no conversation of a tenant has.
        Self::decide_for(
            selector,
            requested,
            "",
            &Conversation::single(text),
            always_classify,
            &[],
        )
    }

    /// As [`Routing::decide`], for a conversation whose request asks `needs`
    /// of its model (see [`ModelSelector::resolve_for`]). Only a routed
    /// request takes part in sticky conversations: a pinned model's
    /// classification is a report, not a decision.
    pub fn decide_for(
        selector: &ModelSelector,
        requested: &str,
        owner: &str,
        conversation: &Conversation<'_>,
        always_classify: bool,
        needs: &[Need],
    ) -> Result<Self, ApiError> {
        let routed = requested.is_empty() || requested == AUTO;
        let span = tracing::info_span!(target: orchestrator::SPANS, "routing",
            harpoon.routed = routed,
            harpoon.tier = tracing::field::Empty,
            harpoon.complexity = tracing::field::Empty,
            harpoon.model = tracing::field::Empty)
        .entered();
        let classification = if routed {
            Some(selector.route_conversation(owner, conversation))
        } else {
            always_classify.then(|| selector.classify_conversation(conversation))
        };
        let model = selector.resolve_for(requested, classification.as_ref(), needs)?;
        if let Some(c) = &classification {
            span.record("harpoon.tier", c.tier.as_str());
            span.record("harpoon.complexity", f64::from(c.complexity));
        }
        span.record("harpoon.model", model.name());
        Ok(Self {
            model,
            classification,
            routed,
        })
    }

    /// The tier that serves the request: the model's own (the router's
    /// choice, or the nearest tier that could take the request).
    pub fn tier(&self) -> Option<Tier> {
        match (&self.classification, self.routed) {
            (Some(c), true) => Some(self.model.settings().tier.unwrap_or(c.tier)),
            _ => self.model.settings().tier,
        }
    }
}

/// Longest `model` a request may name, in characters. Configured names and
/// upstream model ids are far shorter (a Hugging Face repository id is at
/// most 96 characters plus its owner); 256 leaves room for any of them while
/// keeping a caller from storing text of its own choosing in the usage
/// ledger's `model` column (and in `/v2/usage`'s group keys, which echo it).
pub const MODEL_NAME_MAX: usize = 256;

/// Why `model` cannot be a model name: longer than [`MODEL_NAME_MAX`]
/// characters, or holding a control, invisible or text-direction character
/// (a newline or escape in a ledger key would end up in reports and
/// exports; a right-to-left override or line separator would make a report
/// show another name than the one stored). Empty means `auto`.
pub fn model_name_problem(model: &str) -> Option<String> {
    let chars = model.chars().count();
    if chars > MODEL_NAME_MAX {
        return Some(format!(
            "{chars} characters; a model name has at most {MODEL_NAME_MAX}"
        ));
    }
    if model.chars().any(|c| c.is_control() || is_format_char(c)) {
        return Some("must not contain control, invisible or text-direction characters".into());
    }
    None
}

/// Unicode's format characters (category Cf: zero-width, bidirectional
/// controls, tags) and its line and paragraph separators.
fn is_format_char(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{FEFF}'
        | '\u{0600}'..='\u{0605}'
        | '\u{200B}'..='\u{200F}'
        | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

/// Checks sampling parameters' ranges.
pub fn validate_sampling(temperature: Option<f32>, top_p: Option<f32>) -> Result<(), ApiError> {
    if let Some(t) = temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(ApiError::validation(format!(
            "temperature: {t} is out of range 0..=2"
        )));
    }
    if let Some(p) = top_p
        && !(p > 0.0 && p <= 1.0)
    {
        return Err(ApiError::validation(format!(
            "top_p: {p} is out of range (0, 1]"
        )));
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

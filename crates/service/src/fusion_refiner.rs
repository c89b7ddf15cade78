//! The model-backed refiner (`refiner: "model"` on `/v2/fragments`,
//! `/v2/process` and MCP's `process_fragments`): mechanical fixes first, then
//! the small tier rewrites a fragment they could not lift, told which signals
//! cost it points. The fusion engine re-scores every answer and keeps it only
//! when it scores no lower, so a poor model can waste tokens but never make an
//! envelope worse.

use harpoon_core::{Fragment, Hygiene, Language, RefineError, Refiner, refine::mechanical_fix};
use orchestrator::generation::{FinishReason, Message, Role, Usage};
use orchestrator::registry::{ModelHandle, Params};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Asks the small tier to fix what mechanical fixes cannot; at most once per
/// fragment per request, so a request's model spend is bounded by its size.
pub struct ModelRefiner {
    model: Arc<ModelHandle>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    max_bytes: usize,
    name: String,
    /// Fragments (path, idx) the model was already asked about.
    asked: Mutex<HashSet<(String, u32)>>,
    /// Tokens spent, for the caller's usage ledger.
    usage: Mutex<Usage>,
    /// Set when the request that owns this refiner is gone.
    cancelled: Arc<AtomicBool>,
}

impl ModelRefiner {
    /// A refiner over `model`, driving its async engine from the cycle's
    /// thread through `runtime`.
    pub fn new(
        model: Arc<ModelHandle>,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
        max_bytes: usize,
    ) -> Self {
        Self {
            name: format!("model ({})", model.name()),
            model,
            runtime,
            timeout,
            max_bytes,
            asked: Mutex::new(HashSet::new()),
            usage: Mutex::new(Usage::default()),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Tokens spent so far.
    pub fn usage(&self) -> Usage {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the owning request was cancelled.
    pub fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    /// A guard that stops further model calls when dropped before
    /// [`CancelOnDrop::disarm`] (the client left mid-cycle).
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.cancelled.clone()))
    }

    fn fail(&self, why: impl std::fmt::Display) -> RefineError {
        RefineError(format!("model {}: {why}", self.model.name()))
    }

    fn ask(
        &self,
        fragment: &Fragment,
        language: Language,
        hygiene: &Hygiene,
    ) -> Result<String, RefineError> {
        // Room for the rewrite: about a token per 3 bytes, plus slack for the fence.
        let budget = u32::try_from(fragment.body.len() / 3 + 64).unwrap_or(u32::MAX);
        let request = self
            .model
            .prepare(Params {
                messages: prompt(fragment, language, hygiene),
                max_tokens: Some(budget),
                temperature: Some(0.0),
                seed: Some(0),
                ..Params::default()
            })
            .map_err(|e| self.fail(e))?;
        let answer = self
            .runtime
            .block_on(tokio::time::timeout(
                self.timeout,
                self.model.generate(request),
            ))
            .map_err(|_| self.fail(format!("no answer within {} s", self.timeout.as_secs())))?
            .map_err(|e| self.fail(e))?;
        self.usage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add_tokens(&answer.usage);
        if answer.finish_reason == FinishReason::Length {
            return Err(self.fail(format!(
                "the answer was cut off at {} tokens, so the code in it is incomplete",
                answer.usage.completion_tokens
            )));
        }
        let code = extract_code(&answer.text);
        if code.trim().is_empty() {
            return Err(self.fail("the answer held no code"));
        }
        if code.len() > self.max_bytes {
            return Err(self.fail(format!(
                "the answer has {} bytes, over harpoon.max_fragment_bytes ({})",
                code.len(),
                self.max_bytes
            )));
        }
        Ok(code)
    }
}

impl Refiner for ModelRefiner {
    fn refine(
        &self,
        fragment: &Fragment,
        language: Language,
        hygiene: &Hygiene,
    ) -> Result<Option<String>, RefineError> {
        let fixed = mechanical_fix(language, &fragment.body);
        if fixed != fragment.body {
            return Ok(Some(fixed));
        }
        if self.cancelled() {
            return Err(self.fail("the request was cancelled"));
        }
        let first_time = self
            .asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((fragment.path.clone(), fragment.idx));
        if !first_time {
            return Ok(None);
        }
        self.ask(fragment, language, hygiene).map(Some)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn waits(&self) -> bool {
        true
    }
}

/// Cancels a [`ModelRefiner`]'s further model calls when dropped armed.
pub struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl CancelOnDrop {
    /// The request finished: nothing to cancel.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

/// The conversation that asks for a fix: the signals that cost points, worst
/// first, and the code in a fence.
fn prompt(fragment: &Fragment, language: Language, hygiene: &Hygiene) -> Vec<Message> {
    let mut costs: Vec<_> = hygiene
        .signals
        .iter()
        .filter(|s| s.contribution > 0.0)
        .collect();
    costs.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    let mut problems = String::new();
    for s in costs {
        problems.push_str(&format!(
            "- {}: {} (costs {:.3}){}\n",
            s.name,
            s.value,
            s.contribution,
            s.detail
                .as_deref()
                .map_or(String::new(), |d| format!(" — {d}"))
        ));
    }
    let lang = language.as_str();
    vec![
        Message::new(
            Role::System,
            "You fix code hygiene problems without changing what the code does. \
             Answer with the whole corrected code in one fenced code block and nothing else.",
        ),
        Message::new(
            Role::User,
            format!(
                "This {lang} fragment from `{}` scores {:.3} of 1 for hygiene. \
                 These checks cost it points:\n{problems}\n\
                 Fix them: remove secrets (read them from the environment instead), \
                 debug output, commented-out code and TODO markers; split long or \
                 deeply nested functions. Keep everything else as it is.\n\n```{lang}\n{}\n```",
                fragment.path,
                hygiene.score,
                fragment.body.trim_end()
            ),
        ),
    ]
}

/// The first fenced code block of an answer, or the whole answer when it has
/// none (small models often skip the fence).
pub fn extract_code(answer: &str) -> String {
    let Some(open) = answer.find("```") else {
        return answer.trim().to_owned();
    };
    let rest = &answer[open + 3..];
    // The info string (` rust`) runs to the end of the fence's line.
    let Some(line_end) = rest.find('\n') else {
        return String::new();
    };
    let code = &rest[line_end + 1..];
    let code = code.find("```").map_or(code, |close| &code[..close]);
    let mut code = code.trim_end().to_owned();
    code.push('\n');
    code
}

#[cfg(test)]
mod tests {
    use super::extract_code;

    #[test]
    fn code_comes_out_of_the_first_fence() {
        assert_eq!(
            extract_code("Here:\n```rust\nfn a() {}\n```\nand ```b```"),
            "fn a() {}\n"
        );
        // An unclosed fence (an answer cut short) keeps what was written.
        assert_eq!(extract_code("```py\nx = 1\n"), "x = 1\n");
        assert_eq!(extract_code("  fn a() {}  "), "fn a() {}");
        assert_eq!(extract_code("```"), "");
    }
}

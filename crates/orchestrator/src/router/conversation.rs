//! A conversation as the router reads it: the last user turn decides, the
//! user turns before it weigh in with decaying weight.
//!
//! Only user turns are scored. Assistant replies are the model's own words
//! (long, and as long for an easy question as for a hard one) and system
//! prompts are the application's, the same for every request it sends; both
//! would teach the router about the application rather than the request.
//! System prompts do take part in the sticky key ([`super::sticky`]).

use super::features::{CONTEXT_DECAY, CONTEXT_TURNS};

/// The texts of a chat that the router uses, borrowed from the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversation<'a> {
    /// System (and developer) messages, oldest first.
    pub system: &'a [&'a str],
    /// User turns before the last one, oldest first.
    pub earlier: &'a [&'a str],
    /// The last user turn: the one the answer is for.
    pub last: &'a str,
}

impl<'a> Conversation<'a> {
    /// A single prompt with no history.
    pub fn single(text: &'a str) -> Self {
        Self {
            system: &[],
            earlier: &[],
            last: text,
        }
    }

    /// The earlier user turns that are read, newest first, each with its
    /// weight: 1 for the turn just before the last, then ×[`CONTEXT_DECAY`]
    /// per turn back; at most [`CONTEXT_TURNS`] of them.
    pub fn context(&self) -> impl Iterator<Item = (&'a str, f32)> + 'a {
        let earlier: &'a [&'a str] = self.earlier;
        earlier
            .iter()
            .rev()
            .take(CONTEXT_TURNS)
            .copied()
            .zip(std::iter::successors(Some(1.0f32), |w| {
                Some(w * CONTEXT_DECAY)
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_the_latest_turns_with_decaying_weight() {
        let earlier = ["one", "two", "three", "four", "five"];
        let c = Conversation {
            system: &[],
            earlier: &earlier,
            last: "six",
        };
        let read: Vec<(&str, f32)> = c.context().collect();
        assert_eq!(read, [("five", 1.0), ("four", 0.5), ("three", 0.25)]);
        assert_eq!(Conversation::single("hi").context().count(), 0);
    }
}

//! Sticky conversations (`router.sticky_conversations`): once a conversation
//! went to the large tier, its later turns stay there.
//!
//! No text is stored. A conversation is known by a keyed hash (SipHash with a
//! random key drawn per process, std's `RandomState`) of its system messages
//! and user turns, in order. Assistant replies are left out because the
//! reply to a turn is only known after generation, and clients resend it
//! reworded or trimmed; the user turns are what a client sends back as sent.
//! When a turn goes large, the hash of the conversation up to and including
//! that turn is remembered; the next request carries those same turns plus a
//! new last one, so it looks up the hash of everything before its last user
//! turn. At most [`STICKY_CAPACITY`] hashes are held (8 bytes each, plus
//! bookkeeping: about 2 MiB at the cap); past it the least recently
//! confirmed is forgotten.

use super::conversation::Conversation;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Mutex, PoisonError};

/// Most conversations remembered at once.
pub const STICKY_CAPACITY: usize = 65_536;
/// Counter of requests held on the large tier by a sticky conversation.
pub const STICKY_HOLDS_TOTAL: &str = "router_sticky_holds_total";

/// The two keys of a request's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationKeys {
    /// Hash of the system messages and the user turns before the last; none
    /// for a conversation of one user turn (nothing earlier to stick to).
    pub earlier: Option<u64>,
    /// Hash of the system messages and every user turn, the last included:
    /// what the next turn will look up.
    pub whole: u64,
}

/// Hashes of conversations that went to the large tier, bounded in number.
pub struct StickyConversations {
    key: RandomState,
    capacity: usize,
    recent: Mutex<Recent>,
}

/// Hashes with the tick they were last confirmed at, and the order of those
/// confirmations (entries whose tick is stale are skipped on eviction).
#[derive(Default)]
struct Recent {
    ticks: HashMap<u64, u64>,
    order: VecDeque<(u64, u64)>,
    clock: u64,
}

impl std::fmt::Debug for StickyConversations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StickyConversations")
            .field("held", &self.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for StickyConversations {
    fn default() -> Self {
        Self::new(STICKY_CAPACITY)
    }
}

impl StickyConversations {
    /// An empty store holding at most `capacity` conversations (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            key: RandomState::new(),
            capacity: capacity.max(1),
            recent: Mutex::default(),
        }
    }

    /// The keys of `owner`'s `conversation` (see [`ConversationKeys`]). The
    /// owner (a tenant) is hashed first, so that one tenant's requests can
    /// never tell, from the tier they get, what another tenant's
    /// conversations said.
    pub fn keys(&self, owner: &str, conversation: &Conversation<'_>) -> ConversationKeys {
        let mut hasher = self.key.build_hasher();
        feed(&mut hasher, b'O', owner);
        for text in conversation.system {
            feed(&mut hasher, b'S', text);
        }
        for text in conversation.earlier {
            feed(&mut hasher, b'U', text);
        }
        let earlier = (!conversation.earlier.is_empty()).then(|| hasher.clone().finish());
        feed(&mut hasher, b'U', conversation.last);
        ConversationKeys {
            earlier,
            whole: hasher.finish(),
        }
    }

    /// Whether `key` went large before; a hit counts as recent use.
    pub fn holds(&self, key: u64) -> bool {
        let mut recent = self.lock();
        if !recent.ticks.contains_key(&key) {
            return false;
        }
        recent.touch(key, self.capacity);
        true
    }

    /// Remembers that the conversation `key` went large.
    pub fn remember(&self, key: u64) {
        self.lock().touch(key, self.capacity);
    }

    /// Conversations held now.
    pub fn len(&self) -> usize {
        self.lock().ticks.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recent> {
        // The map stays consistent whatever panicked while holding it.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Recent {
    fn touch(&mut self, key: u64, capacity: usize) {
        self.clock += 1;
        self.ticks.insert(key, self.clock);
        self.order.push_back((key, self.clock));
        while self.ticks.len() > capacity {
            let Some((old, tick)) = self.order.pop_front() else {
                break;
            };
            if self.ticks.get(&old) == Some(&tick) {
                self.ticks.remove(&old);
            }
        }
        // Re-confirmed keys leave stale entries behind; drop them before the
        // queue outgrows the map by much.
        if self.order.len() > 2 * capacity {
            let ticks = &self.ticks;
            self.order.retain(|(k, t)| ticks.get(k) == Some(t));
        }
    }
}

/// One message into the hash: a role tag and the length, so that no two
/// different sequences of messages feed the same bytes.
fn feed(hasher: &mut impl Hasher, role: u8, text: &str) {
    let text = text.trim();
    hasher.write_u8(role);
    hasher.write_usize(text.len());
    hasher.write(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_turn_looks_up_what_this_turn_remembered() {
        let sticky = StickyConversations::default();
        let first = Conversation::single("Prove Fermat's little theorem.");
        let keys = sticky.keys("acme", &first);
        assert_eq!(keys.earlier, None);
        sticky.remember(keys.whole);
        let earlier = ["Prove Fermat's little theorem."];
        let next = Conversation {
            system: &[],
            earlier: &earlier,
            last: "ok and for 3?",
        };
        assert_eq!(sticky.keys("acme", &next).earlier, Some(keys.whole));
        assert_ne!(sticky.keys("globex", &next).earlier, Some(keys.whole));
        assert!(sticky.holds(keys.whole));
        // Another system prompt or another first turn is another conversation.
        let system = ["You are terse."];
        let other = Conversation {
            system: &system,
            ..next
        };
        assert_ne!(sticky.keys("acme", &other).earlier, Some(keys.whole));
        let split = ["Prove Fermat's", "little theorem."];
        let other = Conversation {
            earlier: &split,
            ..next
        };
        assert_ne!(sticky.keys("acme", &other).earlier, Some(keys.whole));
    }

    #[test]
    fn holds_at_most_its_capacity_forgetting_the_least_recent() {
        let sticky = StickyConversations::new(3);
        for k in 1..=3 {
            sticky.remember(k);
        }
        assert!(sticky.holds(1)); // 1 is now the most recent
        sticky.remember(4);
        assert_eq!(sticky.len(), 3);
        assert!(!sticky.holds(2));
        assert!(sticky.holds(1) && sticky.holds(3) && sticky.holds(4));
        for _ in 0..100 {
            sticky.remember(4);
        }
        assert!(sticky.lock().order.len() <= 6);
        assert_eq!(sticky.len(), 3);
    }
}

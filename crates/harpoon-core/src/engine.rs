//! The engine: scores fragments in parallel on its own thread pool, caches
//! reports by anchor, and runs bounded envelope cycles.

use crate::{
    Fragment, FusionSettings, Hygiene,
    envelope::{
        Absorbed, Duplicate, Envelope, Event, EventKind, GENESIS, NearDuplicate, Pending,
        PendingReason, chain_hash, hamming, next_link, simhash,
    },
    fragment::anchor_bytes,
    hygiene,
    language::{self, Language},
    refine::{MechanicalRefiner, RefineError, Refiner},
};
use rayon::prelude::*;
use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// Round limit no request can exceed, whatever it asks for.
pub const MAX_ITERATIONS_CAP: u32 = 1_000;

type CacheKey = ([u8; 32], Language);

/// Bounded map from (anchor, language) to a hygiene report; the oldest entry
/// leaves first.
struct ScoreCache {
    capacity: usize,
    inner: Mutex<(HashMap<CacheKey, Hygiene>, VecDeque<CacheKey>)>,
    /// Scores answered from the cache, and computed, since start.
    hits: AtomicU64,
    computed: AtomicU64,
}

/// How many fragment scores an engine gave since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreStats {
    /// Scores given (from the cache or computed).
    pub scored: u64,
    /// Of those, answered from the cache.
    pub cache_hits: u64,
}

impl ScoreCache {
    fn get(&self, key: &CacheKey) -> Option<Hygiene> {
        if self.capacity == 0 {
            return None;
        }
        let guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.get(key).cloned()
    }

    fn put(&self, key: CacheKey, value: &Hygiene) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(key, value.clone()).is_none() {
            order.push_back(key);
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.len()
    }

    fn clear(&self) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        guard.0.clear();
        guard.1.clear();
    }
}

/// Scores fragments and assembles envelopes.
pub struct HarpoonEngine {
    settings: FusionSettings,
    /// Dedicated pool, so scoring never competes with (or waits on) the global one.
    pool: Option<rayon::ThreadPool>,
    cache: ScoreCache,
}

impl std::fmt::Debug for HarpoonEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HarpoonEngine")
            .field("settings", &self.settings)
            .field("threads", &self.threads())
            .finish_non_exhaustive()
    }
}

impl HarpoonEngine {
    /// An engine with its own pool of `settings.thread_count` threads (all cores when unset).
    pub fn new(settings: &FusionSettings) -> Self {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.thread_count.unwrap_or(0))
            .thread_name(|i| format!("fusion-{i}"))
            .build()
            .ok();
        Self {
            settings: settings.clone(),
            pool,
            cache: ScoreCache {
                capacity: settings.cache_entries,
                inner: Mutex::default(),
                hits: AtomicU64::new(0),
                computed: AtomicU64::new(0),
            },
        }
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &FusionSettings {
        &self.settings
    }

    /// Scoring threads.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or_else(
            rayon::current_num_threads,
            rayon::ThreadPool::current_num_threads,
        )
    }

    /// Reports held in the cache.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Scores given since start, and how many came from the cache.
    pub fn score_stats(&self) -> ScoreStats {
        let hits = self.cache.hits.load(Ordering::Relaxed);
        ScoreStats {
            scored: hits + self.cache.computed.load(Ordering::Relaxed),
            cache_hits: hits,
        }
    }

    /// Empties the cache (for cold measurements).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The hygiene of one fragment (from the cache when its body was scored before).
    pub fn score(&self, fragment: &Fragment) -> Hygiene {
        let language = language::detect(&fragment.path, &fragment.body);
        self.score_as(&fragment.path, &fragment.body, language)
    }

    fn score_as(&self, path: &str, body: &str, language: Language) -> Hygiene {
        let key = (anchor_bytes(body), language);
        if let Some(hit) = self.cache.get(&key) {
            self.cache.hits.fetch_add(1, Ordering::Relaxed);
            return hit;
        }
        self.cache.computed.fetch_add(1, Ordering::Relaxed);
        let report = hygiene::score(language, path, body);
        self.cache.put(key, &report);
        report
    }

    /// Scores many fragments in parallel on the engine's pool; reports come back in order.
    pub fn score_all(&self, fragments: &[Fragment]) -> Vec<Hygiene> {
        self.install(|| fragments.par_iter().map(|f| self.score(f)).collect())
    }

    /// Runs an envelope cycle with the mechanical refiner.
    pub fn envelope_cycle(
        &self,
        fragments: Vec<Fragment>,
        hygiene_threshold: Option<f64>,
        max_iterations: Option<u32>,
    ) -> Envelope {
        self.envelope_cycle_with(
            fragments,
            hygiene_threshold,
            max_iterations,
            &MechanicalRefiner,
        )
    }

    /// Runs an envelope cycle: duplicates out, everything scored, fragments
    /// below the threshold refined and re-scored for at most `max_iterations`
    /// rounds, the rest absorbed and chained.
    pub fn envelope_cycle_with(
        &self,
        fragments: Vec<Fragment>,
        hygiene_threshold: Option<f64>,
        max_iterations: Option<u32>,
        refiner: &dyn Refiner,
    ) -> Envelope {
        let threshold = hygiene_threshold
            .unwrap_or(f64::from(self.settings.hygiene_threshold))
            .clamp(0.0, 1.0);
        let max_iterations = max_iterations
            .unwrap_or(self.settings.max_iterations)
            .min(MAX_ITERATIONS_CAP);

        // Anchors, languages and first scores, in parallel.
        let scored: Vec<(Fragment, String, Language, u64)> = self.install(|| {
            fragments
                .into_par_iter()
                .map(|f| {
                    let anchor = crate::fragment_hash(&f.body);
                    let language = language::detect(&f.path, &f.body);
                    let fingerprint = simhash(&f.body);
                    (f, anchor, language, fingerprint)
                })
                .collect()
        });

        let mut duplicates = Vec::new();
        let mut first_by_anchor: HashMap<String, usize> = HashMap::new();
        let mut live: Vec<Live> = Vec::new();
        for (fragment, anchor, language, fingerprint) in scored {
            if let Some(&first) = first_by_anchor.get(&anchor) {
                duplicates.push(Duplicate {
                    fragment: fragment.reference(),
                    anchor,
                    duplicate_of: live[first].fragment.reference(),
                });
                continue;
            }
            first_by_anchor.insert(anchor.clone(), live.len());
            live.push(Live {
                original_anchor: anchor.clone(),
                fragment,
                anchor,
                language,
                fingerprint,
                hygiene: None,
                refinements: 0,
                done: None,
                failure: None,
            });
        }

        let mut near_duplicates = Vec::new();
        for i in 0..live.len() {
            for j in i + 1..live.len() {
                let d = hamming(live[i].fingerprint, live[j].fingerprint);
                if d <= self.settings.near_duplicate_distance {
                    near_duplicates.push(NearDuplicate {
                        first: live[i].fragment.reference(),
                        second: live[j].fragment.reference(),
                        distance: d,
                    });
                }
            }
        }

        self.install(|| {
            live.par_iter_mut().for_each(|l| {
                l.hygiene = Some(self.score_as(&l.fragment.path, &l.fragment.body, l.language));
            });
        });

        let mut events = Vec::new();
        let mut absorbed = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        let mut absorbed_anchors: HashMap<String, usize> = HashMap::new();
        let mut iteration = 0u32;
        loop {
            // Absorb, in submission order, whatever is good enough now.
            for l in live.iter_mut().filter(|l| l.done.is_none()) {
                let Some(h) = l.hygiene.clone() else { continue };
                if h.score < threshold {
                    continue;
                }
                if let Some(&first) = absorbed_anchors.get(&l.anchor) {
                    // Refinement turned it into a fragment already absorbed.
                    let of: &Absorbed = &absorbed[first];
                    duplicates.push(Duplicate {
                        fragment: l.fragment.reference(),
                        anchor: l.anchor.clone(),
                        duplicate_of: of.fragment.reference(),
                    });
                    l.done = Some(Done::Duplicate);
                    continue;
                }
                let prev = chain.last().map_or(GENESIS.to_owned(), Clone::clone);
                let link = next_link(&prev, &l.anchor);
                events.push(Event {
                    kind: EventKind::Absorbed,
                    fragment: l.fragment.reference(),
                    iteration,
                    anchor_prev: Some(prev),
                    anchor_next: Some(link.clone()),
                    score: h.score,
                });
                chain.push(link);
                absorbed_anchors.insert(l.anchor.clone(), absorbed.len());
                absorbed.push(Absorbed {
                    fragment: l.fragment.clone(),
                    anchor: l.anchor.clone(),
                    original_anchor: l.original_anchor.clone(),
                    refinements: l.refinements,
                    hygiene: h,
                });
                l.done = Some(Done::Absorbed);
            }
            let remaining = live.iter().filter(|l| l.done.is_none()).count();
            if remaining == 0 || iteration >= max_iterations {
                break;
            }
            iteration += 1;
            // Refine everything still below the threshold, then re-score the
            // proposals in parallel. A refiner that waits (on a model) is asked
            // from this thread, one fragment at a time, so the scoring pool is
            // never held idle by it.
            let ask = |l: &Live| -> Result<Option<String>, RefineError> {
                let (None, Some(h)) = (&l.done, &l.hygiene) else {
                    return Ok(None);
                };
                Ok(refiner
                    .refine(&l.fragment, l.language, h)?
                    .filter(|body| *body != l.fragment.body))
            };
            let bodies: Vec<Result<Option<String>, RefineError>> = if refiner.waits() {
                live.iter().map(ask).collect()
            } else {
                self.install(|| live.par_iter().map(ask).collect())
            };
            type Proposal = Result<Option<(String, Hygiene)>, RefineError>;
            let proposals: Vec<Proposal> = self.install(|| {
                bodies
                    .into_par_iter()
                    .zip(live.par_iter())
                    .map(|(body, l)| {
                        Ok(body?.map(|body| {
                            let rescored = self.score_as(&l.fragment.path, &body, l.language);
                            (body, rescored)
                        }))
                    })
                    .collect()
            });
            for (l, proposal) in live.iter_mut().zip(proposals) {
                if l.done.is_some() {
                    continue;
                }
                let old_score = l.hygiene.as_ref().map_or(0.0, |h| h.score);
                match proposal {
                    Err(e) => {
                        events.push(rejected(l, iteration, old_score));
                        l.failure = Some(e.0);
                        l.done = Some(Done::Pending(PendingReason::RefinerFailed));
                    }
                    Ok(None) => {
                        events.push(rejected(l, iteration, old_score));
                        l.done = Some(Done::Pending(PendingReason::RefinerExhausted));
                    }
                    Ok(Some((_, h))) if h.score < old_score => {
                        events.push(rejected(l, iteration, old_score));
                        l.done = Some(Done::Pending(PendingReason::RefinementRegressed));
                    }
                    Ok(Some((body, h))) => {
                        let next = crate::fragment_hash(&body);
                        events.push(Event {
                            kind: EventKind::Refined,
                            fragment: l.fragment.reference(),
                            iteration,
                            anchor_prev: Some(l.anchor.clone()),
                            anchor_next: Some(next.clone()),
                            score: h.score,
                        });
                        let below = h.score < threshold;
                        l.fragment.body = body;
                        l.anchor = next;
                        l.refinements += 1;
                        l.hygiene = Some(h);
                        if below {
                            events.push(Event {
                                kind: EventKind::Requeued,
                                fragment: l.fragment.reference(),
                                iteration,
                                anchor_prev: Some(l.anchor.clone()),
                                anchor_next: Some(l.anchor.clone()),
                                score: l.hygiene.as_ref().map_or(0.0, |h| h.score),
                            });
                        }
                    }
                }
            }
        }

        let mut pending = Vec::new();
        for l in live {
            let reason = match l.done {
                Some(Done::Absorbed | Done::Duplicate) => continue,
                Some(Done::Pending(r)) => r,
                None => PendingReason::MaxIterations,
            };
            let Some(hygiene) = l.hygiene else { continue };
            if l.done.is_none() {
                events.push(Event {
                    kind: EventKind::Rejected,
                    fragment: l.fragment.reference(),
                    iteration,
                    anchor_prev: Some(l.anchor.clone()),
                    anchor_next: None,
                    score: hygiene.score,
                });
            }
            let message = match reason {
                PendingReason::RefinerExhausted => format!(
                    "scores {:.3}, below {threshold}; the {} refiner has no further fix",
                    hygiene.score,
                    refiner.name()
                ),
                PendingReason::MaxIterations => format!(
                    "scores {:.3}, below {threshold} after {max_iterations} refinement rounds",
                    hygiene.score
                ),
                PendingReason::RefinementRegressed => format!(
                    "scores {:.3}, below {threshold}; refining it made it worse",
                    hygiene.score
                ),
                PendingReason::RefinerFailed => format!(
                    "scores {:.3}, below {threshold}; the {} refiner failed: {}",
                    hygiene.score,
                    refiner.name(),
                    l.failure.as_deref().unwrap_or("no reason given")
                ),
            };
            pending.push(Pending {
                fragment: l.fragment,
                anchor: l.anchor,
                hygiene,
                reason,
                message,
            });
        }

        let hygiene_score = if absorbed.is_empty() {
            0.0
        } else {
            absorbed.iter().map(|a| a.hygiene.score).sum::<f64>() / absorbed.len() as f64
        };
        Envelope {
            envelope_hash: chain_hash(&chain),
            absorbed,
            pending,
            duplicates,
            near_duplicates,
            events,
            chain,
            hygiene_score,
            iterations: iteration,
            hygiene_threshold: threshold,
            max_iterations,
        }
    }
}

fn rejected(l: &Live, iteration: u32, score: f64) -> Event {
    Event {
        kind: EventKind::Rejected,
        fragment: l.fragment.reference(),
        iteration,
        anchor_prev: Some(l.anchor.clone()),
        anchor_next: None,
        score,
    }
}

#[derive(Clone, Copy)]
enum Done {
    Absorbed,
    Duplicate,
    Pending(PendingReason),
}

/// A fragment going through the cycle.
struct Live {
    fragment: Fragment,
    anchor: String,
    original_anchor: String,
    language: Language,
    fingerprint: u64,
    hygiene: Option<Hygiene>,
    refinements: u32,
    done: Option<Done>,
    /// Why the refiner failed on it, for the pending message.
    failure: Option<String>,
}

//! Settings of the hosted·ai connection and its pools (the `hosted_ai`
//! section), with their invariants.

use crate::registry::settings::check_http_url;
use crate::{InvalidSetting, Secret, Tier};
use serde::{Deserialize, Serialize};

/// Which header carries the hosted·ai API token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthHeader {
    /// `X-API-Key: <token>`, as hosted·ai's own clients send it.
    #[default]
    XApiKey,
    /// `Authorization: Bearer <token>`, as the documentation describes it.
    Bearer,
}

/// What a tier does when hosted·ai cannot serve it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// The request fails with a JSON 502/503/504.
    #[default]
    None,
    /// The request runs on the model's local engine (its `base_url`, else MLX).
    Native,
}

/// Pools Harpoon may subscribe to: one id, a list tried in order of price, or
/// discovery among the team's available pools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PoolSelection {
    /// Every pool `available-pools` lists for the team.
    #[default]
    Discovery,
    /// Only these pool ids.
    Ids(Vec<String>),
}

impl PoolSelection {
    /// The configured ids, or `None` for discovery.
    pub fn ids(&self) -> Option<&[String]> {
        match self {
            PoolSelection::Discovery => None,
            PoolSelection::Ids(ids) => Some(ids),
        }
    }
}

impl Serialize for PoolSelection {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PoolSelection::Discovery => serializer.serialize_str("discovery"),
            PoolSelection::Ids(ids) if ids.len() == 1 => serializer.serialize_str(&ids[0]),
            PoolSelection::Ids(ids) => ids.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for PoolSelection {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Id {
            Text(String),
            Number(u64),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(Id),
            Many(Vec<Id>),
        }
        let text = |id: Id| match id {
            Id::Text(t) => t.trim().to_owned(),
            Id::Number(n) => n.to_string(),
        };
        let ids: Vec<String> = match Raw::deserialize(deserializer)? {
            // One string may be `discovery`, an id, or ids separated by commas (env).
            Raw::One(Id::Text(t)) if t.trim().is_empty() || t.trim() == "discovery" => {
                return Ok(PoolSelection::Discovery);
            }
            Raw::One(Id::Text(t)) => t
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Raw::One(id) => vec![text(id)],
            Raw::Many(list) => list.into_iter().map(text).collect(),
        };
        if ids.is_empty() {
            return Ok(PoolSelection::Discovery);
        }
        Ok(PoolSelection::Ids(ids))
    }
}

/// vGPUs subscribed for each tier's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VgpusPerTier {
    /// vGPUs for the small tier.
    pub small: u32,
    /// vGPUs for the large tier (and models without a tier).
    pub large: u32,
}

impl Default for VgpusPerTier {
    fn default() -> Self {
        Self { small: 1, large: 1 }
    }
}

impl VgpusPerTier {
    /// vGPUs for a model serving `tier`.
    pub fn for_tier(&self, tier: Option<Tier>) -> u32 {
        match tier {
            Some(Tier::Small) => self.small,
            _ => self.large,
        }
    }
}

/// Connection to a hosted·ai GPUaaS user panel and how its pools are used
/// (see `docs/hosted-ai.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostedAiSettings {
    /// User-panel API root, e.g. `https://panel.example.com/api`; unset disables hosted·ai.
    pub base_url: Option<String>,
    /// API token of the team.
    pub api_key: Option<Secret>,
    /// Header that carries the token: `x_api_key` or `bearer`.
    pub auth_header: AuthHeader,
    /// Team whose subscriptions Harpoon manages.
    pub team_id: Option<String>,
    /// `discovery`, one pool id, or a list of pool ids (the seed's `pool_id` is accepted).
    #[serde(alias = "pool_id")]
    pub pool: PoolSelection,
    /// Whether oversubscribed pools (sharing ratio above 1) may be used
    /// (default true). The team-scope pool listing does not say a pool's
    /// ratio: without overcommit only the pools `pool` names are used.
    pub overcommit: bool,
    /// Highest sharing ratio accepted when `overcommit` is true (1–10, as hosted·ai allows).
    pub max_sharing_ratio: f32,
    /// vGPUs per tier.
    pub vgpus: VgpusPerTier,
    /// Instance type sent on subscribe; unset leaves it to the panel.
    pub instance_type_id: Option<String>,
    /// Image the pods boot (it must serve an OpenAI-compatible API on `inference_port`).
    pub image_uuid: Option<String>,
    /// Pod port of the OpenAI-compatible server, exposed as a service.
    pub inference_port: u16,
    /// Longest wait from choosing a pool to an answering endpoint.
    pub subscribe_timeout_secs: u64,
    /// Longest a request waits for capacity being allocated; then 503 with
    /// `Retry-After`, while the allocation goes on for the requests that follow.
    pub request_wait_secs: u64,
    /// A subscription unused this long is released.
    pub idle_release_secs: u64,
    /// Pools whose estimated hourly cost for the tier exceeds this are skipped; unset is no cap.
    pub max_hourly_cost: Option<f64>,
    /// `none` or `native`: what a hosted_ai model does when hosted·ai cannot serve it.
    pub fallback: Fallback,
    /// Time limit of one API call.
    pub call_timeout_secs: u64,
    /// Attempts of one API call on transient failures (1 = no retry).
    pub max_attempts: u32,
    /// Consecutive failures that open a pool's circuit breaker.
    pub breaker_failures: u32,
    /// Seconds an open breaker waits before letting one call through.
    pub breaker_cooldown_secs: u64,
    /// Interval between status polls while subscribing, exposing, or unsubscribing.
    pub poll_interval_ms: u64,
    /// Requests that may wait for a subscription being set up; more get 503.
    pub max_waiters: u32,
}

impl Default for HostedAiSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            api_key: None,
            auth_header: AuthHeader::XApiKey,
            team_id: None,
            pool: PoolSelection::Discovery,
            overcommit: true,
            max_sharing_ratio: 4.0,
            vgpus: VgpusPerTier::default(),
            instance_type_id: None,
            image_uuid: None,
            inference_port: 8000,
            subscribe_timeout_secs: 600,
            request_wait_secs: 20,
            idle_release_secs: 900,
            max_hourly_cost: None,
            fallback: Fallback::None,
            call_timeout_secs: 30,
            max_attempts: 4,
            breaker_failures: 5,
            breaker_cooldown_secs: 30,
            poll_interval_ms: 2_000,
            max_waiters: 64,
        }
    }
}

impl HostedAiSettings {
    /// Checks the URL, the sharing ratio and the ranges.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if let Some(raw) = &self.base_url {
            check_http_url("hosted_ai.base_url", raw)?;
        }
        if !(1.0..=10.0).contains(&self.max_sharing_ratio) {
            return Err(InvalidSetting::new(
                "hosted_ai.max_sharing_ratio",
                format!("{} is out of range 1.0..=10.0", self.max_sharing_ratio),
            ));
        }
        for (field, value) in [
            ("vgpus.small", self.vgpus.small),
            ("vgpus.large", self.vgpus.large),
        ] {
            if !(1..=64).contains(&value) {
                return Err(InvalidSetting::new(
                    format!("hosted_ai.{field}"),
                    format!("{value} is out of range 1..=64"),
                ));
            }
        }
        if self.inference_port == 0 {
            return Err(InvalidSetting::new(
                "hosted_ai.inference_port",
                "must not be 0",
            ));
        }
        if let Some(cost) = self.max_hourly_cost
            && !(cost.is_finite() && cost > 0.0)
        {
            return Err(InvalidSetting::new(
                "hosted_ai.max_hourly_cost",
                format!("{cost} must be a positive number (or null for no cap)"),
            ));
        }
        for (field, value, range) in [
            (
                "subscribe_timeout_secs",
                self.subscribe_timeout_secs,
                1..=7_200,
            ),
            ("request_wait_secs", self.request_wait_secs, 1..=3_600),
            ("idle_release_secs", self.idle_release_secs, 1..=604_800),
            ("call_timeout_secs", self.call_timeout_secs, 1..=600),
            ("max_attempts", u64::from(self.max_attempts), 1..=10),
            (
                "breaker_failures",
                u64::from(self.breaker_failures),
                1..=1_000,
            ),
            (
                "breaker_cooldown_secs",
                self.breaker_cooldown_secs,
                1..=3_600,
            ),
            ("poll_interval_ms", self.poll_interval_ms, 10..=60_000),
            ("max_waiters", u64::from(self.max_waiters), 1..=100_000),
        ] {
            if !range.contains(&value) {
                return Err(InvalidSetting::new(
                    format!("hosted_ai.{field}"),
                    format!(
                        "{value} is out of range {}..={}",
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// True when enough is set to talk to a panel at all.
    pub fn is_configured(&self) -> bool {
        self.base_url.is_some() && self.api_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_accepts_one_id_a_list_or_discovery() {
        let parse = |v: serde_json::Value| serde_json::from_value::<PoolSelection>(v).unwrap();
        assert_eq!(
            parse(serde_json::json!("discovery")),
            PoolSelection::Discovery
        );
        assert_eq!(
            parse(serde_json::json!(7)),
            PoolSelection::Ids(vec!["7".into()])
        );
        assert_eq!(
            parse(serde_json::json!("7, 8")),
            PoolSelection::Ids(vec!["7".into(), "8".into()])
        );
        assert_eq!(
            parse(serde_json::json!([7, "9"])),
            PoolSelection::Ids(vec!["7".into(), "9".into()])
        );
    }

    #[test]
    fn defaults_are_valid() {
        HostedAiSettings::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let hosted = HostedAiSettings {
            base_url: Some("ftp://panel".into()),
            ..HostedAiSettings::default()
        };
        assert_eq!(hosted.validate().unwrap_err().key, "hosted_ai.base_url");
    }
}

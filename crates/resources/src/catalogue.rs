//! The resources: their URIs, the fixed list, and the templates.

use harpoon_bridge::Covenant;
use rmcp::model::{Resource, ResourceTemplate};

/// Scheme and authority every Harpoon resource URI starts with.
pub const SCHEME: &str = "harpoon://";
/// MIME type of every resource: the JSON REST would return.
pub const JSON: &str = "application/json";

/// A resource URI, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceUri {
    /// `harpoon://models`: the models and their load state.
    Models,
    /// `harpoon://usage`: the caller's usage.
    Usage,
    /// `harpoon://pools`: hosted·ai pools and subscriptions.
    Pools,
    /// `harpoon://covenants`: the caller's covenants.
    Covenants,
    /// `harpoon://covenants/{id}`: one covenant.
    Covenant(String),
    /// `harpoon://strikes/{run_id}`: one strike and its per-repository status.
    Strike(String),
}

impl ResourceUri {
    /// Parses a `harpoon://` URI; `None` for anything this catalogue lacks.
    pub fn parse(uri: &str) -> Option<Self> {
        let path = uri.strip_prefix(SCHEME)?;
        let mut parts = path.split('/');
        let head = parts.next()?;
        let tail = parts.next();
        if parts.next().is_some() {
            return None;
        }
        let id = |raw: Option<&str>| {
            raw.filter(|s| !s.is_empty() && s.chars().all(is_id_char))
                .map(str::to_owned)
        };
        match (head, tail) {
            ("models", None) => Some(Self::Models),
            ("usage", None) => Some(Self::Usage),
            ("pools", None) => Some(Self::Pools),
            ("covenants", None) => Some(Self::Covenants),
            ("covenants", raw) => id(raw).map(Self::Covenant),
            ("strikes", raw) => id(raw).map(Self::Strike),
            _ => None,
        }
    }

    /// The URI again.
    pub fn uri(&self) -> String {
        match self {
            Self::Models => format!("{SCHEME}models"),
            Self::Usage => format!("{SCHEME}usage"),
            Self::Pools => format!("{SCHEME}pools"),
            Self::Covenants => format!("{SCHEME}covenants"),
            Self::Covenant(id) => format!("{SCHEME}covenants/{id}"),
            Self::Strike(id) => format!("{SCHEME}strikes/{id}"),
        }
    }
}

/// Ids are opaque but URL-safe; anything else cannot name a record.
fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The fixed resources every caller sees (its covenants are listed after them).
pub fn fixed() -> Vec<Resource> {
    vec![
        Resource::new(ResourceUri::Models.uri(), "models")
            .with_title("Models")
            .with_description(
                "auto and every configured model: tier, engine, and whether it can serve now (loaded or reachable)",
            )
            .with_mime_type(JSON),
        Resource::new(ResourceUri::Usage.uri(), "usage")
            .with_title("Your usage")
            .with_description("Your tenant's requests and tokens over the last 30 days, by model")
            .with_mime_type(JSON),
        Resource::new(ResourceUri::Pools.uri(), "pools")
            .with_title("hosted·ai pools")
            .with_description(
                "hosted·ai GPU pools: sharing ratio, free slots, our subscriptions and their states, endpoint health",
            )
            .with_mime_type(JSON),
        Resource::new(ResourceUri::Covenants.uri(), "covenants")
            .with_title("Your covenants")
            .with_description("Your tenant's covenants, newest first: the first page of GET /v2/covenants (total and next_offset say whether there are more; resources/list pages through all of them)")
            .with_mime_type(JSON),
    ]
}

/// One listed covenant: named by its slug, titled by its title.
pub fn covenant(covenant: &Covenant) -> Resource {
    Resource::new(
        ResourceUri::Covenant(covenant.covenant_id.clone()).uri(),
        covenant.slug.clone(),
    )
    .with_title(format!("Covenant: {}", covenant.title))
    .with_description(covenant.description.clone())
    .with_mime_type(JSON)
}

/// The part of a resource's content whose change is worth a notification:
/// without the fields that move with the clock on every read (the usage
/// window's bounds, the models' `created` stamp).
pub fn fingerprint(uri: &ResourceUri, value: &serde_json::Value) -> serde_json::Value {
    let mut value = value.clone();
    match (uri, &mut value) {
        (ResourceUri::Usage, serde_json::Value::Object(o)) => {
            o.remove("since");
            o.remove("until");
        }
        (ResourceUri::Models, serde_json::Value::Object(o)) => {
            if let Some(serde_json::Value::Array(models)) = o.get_mut("data") {
                for model in models
                    .iter_mut()
                    .filter_map(serde_json::Value::as_object_mut)
                {
                    model.remove("created");
                }
            }
        }
        _ => {}
    }
    value
}

/// The templates for records addressed by id.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{SCHEME}covenants/{{id}}"), "covenant")
            .with_title("Covenant")
            .with_description("One of your covenants: title, description, reality_state, target_state and metadata")
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{SCHEME}strikes/{{run_id}}"), "strike")
            .with_title("Strike")
            .with_description(
                "One strike: its state and, per repository, branch, commit, pull request and error",
            )
            .with_mime_type(JSON),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_strangers_are_refused() {
        for uri in [
            "harpoon://models",
            "harpoon://usage",
            "harpoon://pools",
            "harpoon://covenants",
            "harpoon://covenants/cov_01",
            "harpoon://strikes/run-7",
        ] {
            assert_eq!(
                ResourceUri::parse(uri).map(|r| r.uri()).as_deref(),
                Some(uri)
            );
        }
        for uri in [
            "harpoon://covenants/",
            "harpoon://covenants/a/b",
            "harpoon://covenants/a%2Fb",
            "harpoon://strikes",
            "harpoon://secrets",
            "file:///etc/passwd",
        ] {
            assert_eq!(ResourceUri::parse(uri), None, "{uri}");
        }
    }

    #[test]
    fn fingerprints_ignore_the_clock() {
        let a = serde_json::json!({"tenant": "t", "since": 1, "until": 2, "groups": []});
        let b = serde_json::json!({"tenant": "t", "since": 5, "until": 9, "groups": []});
        let c = serde_json::json!({"tenant": "t", "since": 5, "until": 9, "groups": [{"key": "gemma"}]});
        assert_eq!(
            fingerprint(&ResourceUri::Usage, &a),
            fingerprint(&ResourceUri::Usage, &b)
        );
        assert_ne!(
            fingerprint(&ResourceUri::Usage, &b),
            fingerprint(&ResourceUri::Usage, &c)
        );
        let m1 = serde_json::json!({"data": [{"id": "auto", "created": 1, "available": false}]});
        let m2 = serde_json::json!({"data": [{"id": "auto", "created": 2, "available": false}]});
        let m3 = serde_json::json!({"data": [{"id": "auto", "created": 2, "available": true}]});
        assert_eq!(
            fingerprint(&ResourceUri::Models, &m1),
            fingerprint(&ResourceUri::Models, &m2)
        );
        assert_ne!(
            fingerprint(&ResourceUri::Models, &m2),
            fingerprint(&ResourceUri::Models, &m3)
        );
    }

    #[test]
    fn listed_covenants_are_addressed_by_their_id() {
        let stored = Covenant {
            covenant_id: "cov_1".into(),
            title: "Rename ids".into(),
            slug: "rename-ids".into(),
            description: "user_id becomes account_id".into(),
            reality_state: harpoon_bridge::RealityState {
                description: "user_id".into(),
                key_aspects: vec![],
            },
            target_state: harpoon_bridge::TargetState {
                description: "account_id".into(),
                success_criteria: vec![],
            },
            metadata: Default::default(),
            created_at: 0,
        };
        let listed = covenant(&stored);
        assert_eq!(listed.uri, "harpoon://covenants/cov_1");
        assert_eq!(listed.name, "rename-ids");
        assert_eq!(
            ResourceUri::parse(&listed.uri),
            Some(ResourceUri::Covenant("cov_1".into()))
        );
    }
}

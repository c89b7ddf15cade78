//! What a model can do beyond plain chat, what a request asks of it, and the
//! conversation reshaped the way the model's chat template expects.
//!
//! A model's capabilities come from its configuration (`models.NAME.capabilities`),
//! else from its chat template and `config.json` when they are at hand, else
//! from its engine: an OpenAI-compatible upstream is given everything and
//! answers for itself; the in-process engine honours the fields
//! [`GenerationRequest`](crate::generation::GenerationRequest) names, tools
//! (where its template renders them), response formats and [`LOCAL_FIELDS`].

use crate::generation::{Message, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The request fields beyond tools and response formats that the in-process
/// (mlx) engine honours itself: sampling options of mlx-lm and its logprobs.
pub const LOCAL_FIELDS: &[&str] = &[
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "n",
    "presence_penalty",
    "top_logprobs",
];

/// A model's capabilities as configured; unset ones are detected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CapabilitySettings {
    /// Function tools (`tools`, `tool_choice`, tool messages).
    pub tools: Option<bool>,
    /// Image, audio and file content parts.
    pub vision: Option<bool>,
    /// `response_format` (`json_object`, `json_schema`).
    pub json_schema: Option<bool>,
}

/// What a model can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Function tools.
    pub tools: bool,
    /// Non-text content parts.
    pub vision: bool,
    /// `response_format`.
    pub json_schema: bool,
    /// Every other request field goes to the engine unchanged (OpenAI-compatible
    /// upstreams); otherwise a field beyond the honoured set is refused.
    pub pass_through: bool,
    /// Fields the engine honours itself when it does not pass them through.
    #[serde(skip)]
    pub fields: &'static [&'static str],
    /// The chat template insists on user/assistant turns alternating after
    /// one leading system message (Gemma's), so the conversation is reshaped.
    pub strict_turns: bool,
}

/// The parts of a model's chat template and config that decide capabilities.
#[derive(Debug, Clone, Default)]
pub struct TemplateFacts {
    /// The chat template's text, when it is at hand.
    pub template: Option<String>,
    /// Whether `config.json` describes a vision tower.
    pub vision_config: bool,
}

impl TemplateFacts {
    /// Reads `tokenizer_config.json`'s `chat_template` (or `chat_template.jinja`)
    /// and `config.json` from a model directory; nothing when they are absent.
    pub fn read(dir: Option<&std::path::Path>) -> Self {
        let Some(dir) = dir else {
            return Self::default();
        };
        let json = |name: &str| -> Option<Value> {
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).ok()?).ok()
        };
        let template = json("tokenizer_config.json")
            .and_then(|c| match c.get("chat_template")? {
                Value::String(t) => Some(t.clone()),
                // A list of named templates: the default one.
                Value::Array(list) => list
                    .iter()
                    .find(|t| t["name"] == "default")
                    .and_then(|t| t["template"].as_str().map(str::to_owned)),
                _ => None,
            })
            .or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        let vision_config = json("config.json").is_some_and(|c| c.get("vision_config").is_some());
        Self {
            template,
            vision_config,
        }
    }
}

impl Capabilities {
    /// The capabilities of a model on an engine that passes fields through
    /// (`pass_through`) or templates locally, from its settings and facts.
    pub fn detect(
        settings: &CapabilitySettings,
        facts: &TemplateFacts,
        pass_through: bool,
    ) -> Self {
        let template = facts.template.as_deref();
        let strict_turns = template.is_some_and(|t| t.contains("must alternate"));
        // The in-process engine renders tools only through a template known
        // to take them, constrains any model to a response format, and reads
        // text alone.
        let (tools, vision, json_schema, fields) = if pass_through {
            (
                template.is_none_or(|t| t.contains("tools")),
                facts.vision_config || template.is_none(),
                true,
                &[][..],
            )
        } else {
            (
                template.is_some_and(|t| t.contains("tools")),
                false,
                true,
                LOCAL_FIELDS,
            )
        };
        Self {
            tools: settings.tools.unwrap_or(tools),
            vision: settings.vision.unwrap_or(vision),
            json_schema: settings.json_schema.unwrap_or(json_schema),
            pass_through,
            fields,
            strict_turns,
        }
    }

    /// The first thing `needs` asks that this model cannot do, if any.
    pub fn unmet<'a>(&self, needs: &'a [Need]) -> Option<&'a Need> {
        needs.iter().find(|need| match need.kind {
            NeedKind::Tools => !self.tools,
            NeedKind::Vision => !self.vision,
            NeedKind::JsonSchema => !self.json_schema,
            NeedKind::Field => !self.pass_through && !self.fields.contains(&need.param.as_str()),
        })
    }
}

/// Kinds of things a request can ask beyond plain chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeedKind {
    /// Function tools.
    Tools,
    /// A non-text content part.
    Vision,
    /// A response format.
    JsonSchema,
    /// A field only an OpenAI-compatible upstream takes as it is.
    Field,
}

impl NeedKind {
    /// The capability's name, as errors and `/v1/models` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Vision => "vision",
            Self::JsonSchema => "json_schema",
            Self::Field => "this field",
        }
    }
}

/// One thing a request asks of its model, and the request field that asks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// What it asks.
    pub kind: NeedKind,
    /// The field, as OpenAI's `param` names it (`tools`, `messages[2].content[1]`).
    pub param: String,
}

/// Whether a field's value asks nothing of the model: clients often send
/// defaults explicitly (`n: 1`, `logprobs: false`, `presence_penalty: 0`),
/// and a model honours those by doing what it does anyway.
fn is_no_op(name: &str, value: &Value) -> bool {
    match (name, value) {
        (_, Value::Null) => true,
        ("n", v) => v.as_u64() == Some(1),
        ("logprobs" | "store", Value::Bool(false)) => true,
        ("presence_penalty" | "frequency_penalty", v) => v.as_f64() == Some(0.0),
        ("logit_bias" | "metadata", Value::Object(m)) => m.is_empty(),
        ("tools", Value::Array(a)) => a.is_empty(),
        ("response_format", v) => v["type"] == "text",
        ("service_tier", v) => v == "auto" || v == "default",
        _ => false,
    }
}

/// What a request asks of its model: its extra fields (those beyond what every
/// engine honours) and its messages.
pub fn needs(extra: &Map<String, Value>, messages: &[Message]) -> Vec<Need> {
    let has_tools = extra.get("tools").is_some_and(|t| !is_no_op("tools", t));
    let mut out = Vec::new();
    for (name, value) in extra {
        if is_no_op(name, value) {
            continue;
        }
        let kind = match name.as_str() {
            "tools" | "functions" => NeedKind::Tools,
            // Only meaningful beside tools; with none they ask nothing.
            "tool_choice" | "parallel_tool_calls" | "function_call" if !has_tools => continue,
            "tool_choice" | "parallel_tool_calls" | "function_call" => NeedKind::Tools,
            "response_format" => NeedKind::JsonSchema,
            _ => NeedKind::Field,
        };
        out.push(Need {
            kind,
            param: name.clone(),
        });
    }
    // Errors name the same field whatever order the map keeps.
    out.sort_by(|a, b| a.param.cmp(&b.param));
    for (i, message) in messages.iter().enumerate() {
        let wire = message.wire.as_ref().unwrap_or(&Value::Null);
        if message.role == Role::Tool || wire.get("tool_calls").is_some_and(|c| !c.is_null()) {
            out.push(Need {
                kind: NeedKind::Tools,
                param: format!("messages[{i}]"),
            });
        }
        // Any other field of the message (a participant's `name`, say) is
        // one only an upstream takes; empty ones, as SDKs echo an earlier
        // answer back (`refusal: null`, `annotations: []`), ask nothing.
        if let Some(fields) = wire.as_object() {
            for (key, value) in fields {
                let empty = match value {
                    Value::Null => true,
                    Value::Array(a) => a.is_empty(),
                    Value::Object(o) => o.is_empty(),
                    Value::String(s) => s.is_empty(),
                    _ => false,
                };
                if !empty
                    && !matches!(
                        key.as_str(),
                        "role" | "content" | "tool_calls" | "tool_call_id"
                    )
                {
                    out.push(Need {
                        kind: NeedKind::Field,
                        param: format!("messages[{i}].{key}"),
                    });
                }
            }
        }
        if let Some(parts) = wire["content"].as_array()
            && let Some(j) = parts.iter().position(|p| p["type"] != "text")
        {
            out.push(Need {
                kind: NeedKind::Vision,
                param: format!("messages[{i}].content[{j}]"),
            });
        }
    }
    out
}

/// The conversation as a chat template that Harpoon renders (or an upstream
/// whose template is known to be strict) takes it: every `system` message
/// joined into one at the start (a template may take only one, and only
/// there); with `strict_turns`, consecutive turns of one author joined and an
/// empty user turn before a leading assistant turn, so user and assistant
/// alternate. Messages keep the caller's own form (`wire`) only where the
/// reshaping leaves them as they were.
pub fn normalise(messages: Vec<Message>, strict_turns: bool) -> Vec<Message> {
    let join = |a: &mut Message, b: Message| {
        if !a.content.is_empty() && !b.content.is_empty() {
            a.content.push_str("\n\n");
        }
        a.content.push_str(&b.content);
        a.wire = None;
    };
    let (systems, rest): (Vec<Message>, Vec<Message>) =
        messages.into_iter().partition(|m| m.role == Role::System);
    let mut out: Vec<Message> = Vec::with_capacity(rest.len() + 2);
    let mut systems = systems.into_iter();
    if let Some(mut first) = systems.next() {
        // `developer` comes in as a system message with its own wire role.
        first.wire = None;
        for more in systems {
            join(&mut first, more);
        }
        out.push(first);
    }
    for message in rest {
        if strict_turns {
            let last_turn = out.last_mut().filter(|m| m.role != Role::System);
            match last_turn {
                Some(last) if last.role == message.role => {
                    join(last, message);
                    continue;
                }
                None if message.role == Role::Assistant => {
                    out.push(Message::new(Role::User, ""));
                }
                _ => {}
            }
        }
        out.push(message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(role: Role, text: &str) -> Message {
        Message::new(role, text)
    }

    #[test]
    fn systems_join_at_the_front_and_strict_turns_alternate() {
        let conversation = vec![
            m(Role::System, "a"),
            m(Role::Assistant, "hello"),
            m(Role::System, "b"),
            m(Role::User, "x"),
            m(Role::User, "y"),
        ];
        let strict = normalise(conversation.clone(), true);
        let shape: Vec<(Role, &str)> = strict
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect();
        assert_eq!(
            shape,
            [
                (Role::System, "a\n\nb"),
                (Role::User, ""),
                (Role::Assistant, "hello"),
                (Role::User, "x\n\ny"),
            ]
        );
        let loose = normalise(conversation, false);
        assert_eq!(loose.len(), 4);
        assert_eq!(loose[0].content, "a\n\nb");
        assert_eq!(loose[1].role, Role::Assistant);
    }

    #[test]
    fn defaults_sent_explicitly_ask_nothing_and_the_rest_is_named() {
        let extra = json!({
            "n": 1, "logprobs": false, "presence_penalty": 0, "tool_choice": "auto",
            "response_format": {"type": "text"}, "user": "u1", "logit_bias": {"5": 1}
        });
        let found = needs(extra.as_object().unwrap(), &[]);
        let names: Vec<&str> = found.iter().map(|n| n.param.as_str()).collect();
        assert_eq!(names, ["logit_bias", "user"]);
        assert!(found.iter().all(|n| n.kind == NeedKind::Field));
    }

    #[test]
    fn a_named_participant_is_a_field_and_echoed_empty_fields_are_not() {
        let mut named = m(Role::User, "hi");
        named.wire = Some(json!({"role": "user", "content": "hi", "name": "ann"}));
        let mut echoed = m(Role::Assistant, "hello");
        echoed.wire = Some(
            json!({"role": "assistant", "content": "hello", "refusal": null,
            "annotations": [], "audio": null, "tool_calls": null}),
        );
        let found = needs(&Map::new(), &[named, echoed]);
        let params: Vec<&str> = found.iter().map(|n| n.param.as_str()).collect();
        assert_eq!(params, ["messages[0].name"]);
    }

    #[test]
    fn tools_images_and_tool_messages_are_needs_of_their_kind() {
        let extra = json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"});
        let mut tool_reply = m(Role::Tool, "42");
        tool_reply.wire = Some(json!({"role": "tool", "tool_call_id": "c1", "content": "42"}));
        let mut image = m(Role::User, "look");
        image.wire = Some(json!({"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:,"}}
        ]}));
        let found = needs(extra.as_object().unwrap(), &[image, tool_reply]);
        let kinds: Vec<(NeedKind, &str)> =
            found.iter().map(|n| (n.kind, n.param.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (NeedKind::Tools, "tool_choice"),
                (NeedKind::Tools, "tools"),
                (NeedKind::Vision, "messages[0].content[1]"),
                (NeedKind::Tools, "messages[1]"),
            ]
        );
        let local = Capabilities::detect(
            &CapabilitySettings::default(),
            &TemplateFacts::default(),
            false,
        );
        assert_eq!(
            local.unmet(&found).map(|n| n.param.as_str()),
            Some("tool_choice")
        );
        let upstream = Capabilities::detect(
            &CapabilitySettings::default(),
            &TemplateFacts::default(),
            true,
        );
        assert_eq!(upstream.unmet(&found), None);
        let gemma = TemplateFacts {
            template: Some("{{ raise_exception('Conversation roles must alternate') }}".into()),
            vision_config: false,
        };
        let strict = Capabilities::detect(&CapabilitySettings::default(), &gemma, true);
        assert!(strict.strict_turns && !strict.tools && !strict.vision);
        assert_eq!(
            strict.unmet(&found).map(|n| n.param.as_str()),
            Some("tool_choice")
        );
    }

    #[test]
    fn a_local_model_takes_tools_where_its_template_renders_them_and_its_own_fields() {
        let extra = json!({
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "response_format": {"type": "json_object"}, "logprobs": true, "top_logprobs": 2,
            "n": 2, "logit_bias": {"5": 1}, "presence_penalty": 1, "frequency_penalty": 1
        });
        let found = needs(extra.as_object().unwrap(), &[]);
        let qwen = TemplateFacts {
            template: Some("{%- if tools %}<tool_call>{%- endif %}".into()),
            vision_config: false,
        };
        let local = Capabilities::detect(&CapabilitySettings::default(), &qwen, false);
        assert_eq!(local.unmet(&found), None);
        let gemma = TemplateFacts {
            template: Some("{{ raise_exception('Conversation roles must alternate') }}".into()),
            vision_config: false,
        };
        let strict = Capabilities::detect(&CapabilitySettings::default(), &gemma, false);
        assert!(strict.json_schema && !strict.tools);
        assert_eq!(
            strict.unmet(&found).map(|n| n.param.as_str()),
            Some("tools")
        );
        let user = json!({"user": "u1"});
        let found = needs(user.as_object().unwrap(), &[]);
        assert_eq!(local.unmet(&found).map(|n| n.param.as_str()), Some("user"));
    }
}

//! OpenAI's Responses API (REST's `POST /v1/responses`, `GET` and `DELETE
//! /v1/responses/{id}`): a request is turned into a chat completion of the
//! same models ([`crate::ops::chat`]: routing, capabilities, metering,
//! engines), and its answer into a Response object or its stream of events.
//! Stored responses (`store`, on by default as at OpenAI) are kept per tenant,
//! with the conversation they end, which `previous_response_id` continues.

use crate::{
    callers::Caller,
    error::{ApiError, ErrorCode},
    ops::Validate,
    ops::chat::{
        ChatCompletionRequest, ChatMessage, ChatReply, ChatStreamItem, StreamOptions,
        chat_completion,
    },
    ops::inference::{Routing, model_name_problem, unix_now, validate_sampling},
    state::AppState,
    storage::responses::StoredResponse,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, VecDeque};
use utoipa::ToSchema;

/// `input`: a user message as text, or a list of input items.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResponseInput {
    /// One user message.
    Text(String),
    /// Messages (`role` and `content`), `function_call` and
    /// `function_call_output` items.
    Items(Vec<Value>),
}

/// `text`: the output's format.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct TextOptions {
    /// `{"type": "text"}` (the default), `{"type": "json_object"}`, or
    /// `{"type": "json_schema", "name", "schema", "strict"}`.
    #[schema(value_type = Option<Object>)]
    pub format: Option<Value>,
    /// Every other field, refused unless empty.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

/// Body of `POST /v1/responses`. Fields of OpenAI's request not listed here
/// (`reasoning`, `include`, `prompt`, `conversation`, built-in tools, …) are
/// refused with 400 naming them, unless null or empty.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateResponseRequest {
    /// `auto` lets the router pick the tier; a configured model name pins it.
    #[serde(default = "auto")]
    #[schema(max_length = 256)]
    pub model: String,
    /// The new input.
    pub input: ResponseInput,
    /// A system message put first; not carried over to responses that continue this one.
    pub instructions: Option<String>,
    /// Function tools (`{"type": "function", "name", "parameters", "strict"}`).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub tools: Vec<Value>,
    /// `auto`, `none`, `required`, or `{"type": "function", "name"}`.
    #[schema(value_type = Option<Object>)]
    pub tool_choice: Option<Value>,
    /// Whether several function calls may come in one response.
    pub parallel_tool_calls: Option<bool>,
    /// Most tokens to generate.
    #[schema(minimum = 1)]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature, 0–2.
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f32>,
    /// Nucleus-sampling mass, (0, 1].
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub top_p: Option<f32>,
    /// The output's format.
    pub text: Option<TextOptions>,
    /// A stored response of the caller's tenant that this one continues.
    pub previous_response_id: Option<String>,
    /// Keep the response for `GET /v1/responses/{id}` and `previous_response_id` (default true).
    pub store: Option<bool>,
    /// Stream server-sent events (`response.created`, `response.output_text.delta`, …).
    #[serde(default)]
    pub stream: bool,
    /// Up to 16 string pairs, kept with the response.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Every other field, as sent.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extra: Map<String, Value>,
}

fn auto() -> String {
    orchestrator::selector::AUTO.into()
}

/// Whether a value asks nothing (SDKs and agent frameworks send explicit nulls,
/// `false` and empty lists for what they leave unset).
fn asks_nothing(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::Array(list) => list.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

impl Validate for CreateResponseRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(why) = model_name_problem(&self.model) {
            return Err(ApiError::invalid_param("model", why));
        }
        // `truncation: "disabled"` is what happens anyway: a prompt that does not fit is refused.
        if let Some((field, _)) = self
            .extra
            .iter()
            .find(|(k, v)| !(asks_nothing(v) || k.as_str() == "truncation" && *v == "disabled"))
        {
            let why = match field.as_str() {
                "background" => "background mode is not supported; leave it false",
                "truncation" => {
                    "only `disabled` is supported: a prompt that does not fit is refused"
                }
                _ => "not supported by Harpoon's Responses API (docs/openai-compatibility.md)",
            };
            return Err(ApiError::invalid_param(field, why));
        }
        if let Some(text) = &self.text
            && let Some((field, _)) = text.extra.iter().find(|(_, v)| !asks_nothing(v))
        {
            return Err(ApiError::invalid_param(
                &format!("text.{field}"),
                "not supported",
            ));
        }
        match &self.input {
            ResponseInput::Text(t) if t.is_empty() => {
                return Err(ApiError::invalid_param("input", "must not be empty"));
            }
            ResponseInput::Items(items) if items.is_empty() => {
                return Err(ApiError::invalid_param(
                    "input",
                    "at least one input item is required",
                ));
            }
            _ => {}
        }
        for (i, tool) in self.tools.iter().enumerate() {
            function_tool(i, tool)?;
        }
        if self.max_output_tokens == Some(0) {
            return Err(ApiError::invalid_param(
                "max_output_tokens",
                "must be at least 1",
            ));
        }
        if let Some(metadata) = &self.metadata {
            if metadata.len() > 16 {
                return Err(ApiError::invalid_param("metadata", "at most 16 pairs"));
            }
            if let Some((k, _)) = metadata.iter().find(|(k, v)| {
                k.chars().count() > 64 || v.as_str().is_none_or(|s| s.chars().count() > 512)
            }) {
                return Err(ApiError::invalid_param(
                    "metadata",
                    format!(
                        "{k:?}: keys have at most 64 characters, values are strings of at most 512"
                    ),
                ));
            }
        }
        validate_sampling(self.temperature, self.top_p)
    }
}

/// The chat form of function tool `i` (`{"type": "function", "function": {…}}`).
fn function_tool(i: usize, tool: &Value) -> Result<Value, ApiError> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "function" {
        return Err(ApiError::invalid_param(
            &format!("tools[{i}].type"),
            format!(
                "{kind:?}: only function tools are supported (built-in tools such as web search run at OpenAI, not here)"
            ),
        ));
    }
    let Some(name) = tool
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Err(ApiError::invalid_param(
            &format!("tools[{i}].name"),
            "a function tool needs its name",
        ));
    };
    let mut function = json!({"name": name});
    for key in ["description", "parameters", "strict"] {
        if let Some(v) = tool.get(key).filter(|v| !v.is_null()) {
            function[key] = v.clone();
        }
    }
    Ok(json!({"type": "function", "function": function}))
}

/// A chat completion's refusal, said in the Responses API's names: a chat
/// field becomes the Responses field it came from (a message's index is
/// the conversation's, not the input's, so `input` is named whole).
fn in_responses_terms(e: ApiError) -> ApiError {
    let Some(param) = e.param() else {
        return e;
    };
    let renamed = if param.starts_with("response_format") {
        "text.format".to_owned()
    } else if param == "max_completion_tokens" || param == "max_tokens" {
        "max_output_tokens".to_owned()
    } else if param.starts_with("messages") {
        "input".to_owned()
    } else if param.starts_with("tools[") || param.starts_with("tool_choice.") {
        // Chat nests a function's fields under `function`; Responses does not.
        param.replacen(".function.", ".", 1)
    } else {
        return e;
    };
    e.about_param(&renamed)
}

/// Input items as chat messages (JSON), in order: consecutive function calls
/// become one assistant message with its `tool_calls`.
fn input_messages(input: &ResponseInput) -> Result<Vec<Value>, ApiError> {
    let items = match input {
        ResponseInput::Text(t) => return Ok(vec![json!({"role": "user", "content": t})]),
        ResponseInput::Items(items) => items,
    };
    let mut messages: Vec<Value> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("input[{i}]{field}");
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => messages.push(input_message(i, item)?),
            "function_call" => {
                let (Some(call_id), Some(name)) = (
                    item.get("call_id").and_then(Value::as_str),
                    item.get("name").and_then(Value::as_str),
                ) else {
                    return Err(ApiError::invalid_param(
                        &at(""),
                        "a function_call item needs call_id and name",
                    ));
                };
                let Some(arguments) = item.get("arguments").and_then(Value::as_str) else {
                    return Err(ApiError::invalid_param(
                        &at(".arguments"),
                        "a function_call item needs its arguments, as a JSON string",
                    ));
                };
                let call = json!({"id": call_id, "type": "function",
                                  "function": {"name": name, "arguments": arguments}});
                // Calls made together belong to one assistant turn.
                match messages.last_mut() {
                    Some(last)
                        if last["role"] == "assistant" && last.get("tool_calls").is_some() =>
                    {
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            "function_call_output" => {
                let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
                    return Err(ApiError::invalid_param(
                        &at(".call_id"),
                        "a function_call_output item needs the call_id it answers",
                    ));
                };
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => {
                        let mut text = String::new();
                        for (j, part) in parts.iter().enumerate() {
                            match part.get("text").and_then(Value::as_str) {
                                Some(t) if part["type"] == "input_text" => text.push_str(t),
                                _ => {
                                    return Err(ApiError::invalid_param(
                                        &at(&format!(".output[{j}]")),
                                        "only input_text parts (with their text) are supported in a function's output",
                                    ));
                                }
                            }
                        }
                        text
                    }
                    _ => {
                        return Err(ApiError::invalid_param(
                            &at(".output"),
                            "the function's output, as a string",
                        ));
                    }
                };
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            other => {
                return Err(ApiError::invalid_param(
                    &at(".type"),
                    format!(
                        "{other:?}: only message, function_call and function_call_output items are supported"
                    ),
                ));
            }
        }
    }
    Ok(messages)
}

/// One message item as a chat message.
fn input_message(i: usize, item: &Value) -> Result<Value, ApiError> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or("");
    if !matches!(role, "user" | "assistant" | "system" | "developer") {
        return Err(ApiError::invalid_param(
            &format!("input[{i}].role"),
            format!("{role:?}: one of user, assistant, system, developer"),
        ));
    }
    let content = match item.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                out.push(match kind {
                    "input_text" | "output_text" | "text" => match part.get("text").and_then(Value::as_str) {
                        Some(text) => json!({"type": "text", "text": text}),
                        None => {
                            return Err(ApiError::invalid_param(
                                &format!("input[{i}].content[{j}].text"),
                                "a text part needs its text",
                            ));
                        }
                    },
                    "input_image" => {
                        let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                            return Err(ApiError::invalid_param(
                                &format!("input[{i}].content[{j}].image_url"),
                                "an image as a URL or data URL (file_id is not supported)",
                            ));
                        };
                        let mut image = json!({"url": url});
                        if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                            image["detail"] = detail.clone();
                        }
                        json!({"type": "image_url", "image_url": image})
                    }
                    other => {
                        return Err(ApiError::invalid_param(
                            &format!("input[{i}].content[{j}].type"),
                            format!("{other:?}: input_text, output_text and input_image parts are supported"),
                        ));
                    }
                });
            }
            // A list of text parts alone is plain text, which every engine reads.
            if out.iter().all(|p| p["type"] == "text") {
                Value::String(out.iter().filter_map(|p| p["text"].as_str()).collect())
            } else {
                Value::Array(out)
            }
        }
        _ => {
            return Err(ApiError::invalid_param(
                &format!("input[{i}].content"),
                "a message needs its content, as text or a list of parts",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// The chat form of `text.format`, or None for plain text.
fn response_format(text: Option<&TextOptions>) -> Result<Option<Value>, ApiError> {
    let Some(format) = text
        .and_then(|t| t.format.as_ref())
        .filter(|f| !f.is_null())
    else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let (Some(name), Some(schema)) = (format.get("name"), format.get("schema")) else {
                return Err(ApiError::invalid_param(
                    "text.format",
                    "a json_schema format needs its name and schema",
                ));
            };
            let mut json_schema = json!({"name": name, "schema": schema});
            for key in ["strict", "description"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    json_schema[key] = v.clone();
                }
            }
            Ok(Some(
                json!({"type": "json_schema", "json_schema": json_schema}),
            ))
        }
        other => Err(ApiError::invalid_param(
            "text.format.type",
            format!("{other:?}: one of text, json_object, json_schema"),
        )),
    }
}

/// The chat form of `tool_choice`.
fn tool_choice(choice: &Value) -> Result<Value, ApiError> {
    match choice {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            match o.get("name").and_then(Value::as_str) {
                Some(name) => Ok(json!({"type": "function", "function": {"name": name}})),
                None => Err(ApiError::invalid_param(
                    "tool_choice.name",
                    "the function to call",
                )),
            }
        }
        _ => Err(ApiError::invalid_param(
            "tool_choice",
            "one of auto, none, required, or {\"type\": \"function\", \"name\": …}",
        )),
    }
}

/// What a Response object repeats of its request.
#[derive(Debug, Clone)]
struct Echo {
    instructions: Option<String>,
    max_output_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    tools: Vec<Value>,
    tool_choice: Value,
    parallel_tool_calls: bool,
    text: Value,
    metadata: Map<String, Value>,
    previous_response_id: Option<String>,
    store: bool,
}

impl Echo {
    fn of(request: &CreateResponseRequest) -> Self {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                let mut t = t.clone();
                for key in ["strict", "parameters", "description"] {
                    if let Some(o) = t.as_object_mut() {
                        o.entry(key).or_insert(Value::Null);
                    }
                }
                t
            })
            .collect();
        let format = request
            .text
            .as_ref()
            .and_then(|t| t.format.clone())
            .filter(|f| !f.is_null())
            .unwrap_or_else(|| json!({"type": "text"}));
        Self {
            instructions: request.instructions.clone(),
            max_output_tokens: request.max_output_tokens,
            temperature: request.temperature,
            top_p: request.top_p,
            tools,
            tool_choice: request
                .tool_choice
                .clone()
                .filter(|c| !c.is_null())
                .unwrap_or_else(|| json!("auto")),
            parallel_tool_calls: request.parallel_tool_calls.unwrap_or(true),
            text: json!({"format": format}),
            metadata: request.metadata.clone().unwrap_or_default(),
            previous_response_id: request.previous_response_id.clone(),
            store: request.store.unwrap_or(true),
        }
    }
}

/// A Response object.
struct Shape<'a> {
    id: &'a str,
    created_at: u64,
    model: &'a str,
    echo: &'a Echo,
}

impl Shape<'_> {
    fn object(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        error: Option<Value>,
    ) -> Value {
        let incomplete = match status {
            "incomplete" => json!({"reason": "max_output_tokens"}),
            _ => Value::Null,
        };
        let e = self.echo;
        let mut object = json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": if status == "completed" { json!(unix_now()) } else { Value::Null },
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": e.instructions,
            "max_output_tokens": e.max_output_tokens,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": e.parallel_tool_calls,
            "previous_response_id": e.previous_response_id,
            "store": e.store,
            "temperature": e.temperature,
            "top_p": e.top_p,
            "text": e.text,
            "tool_choice": e.tool_choice,
            "tools": e.tools,
            "truncation": "disabled",
            "metadata": e.metadata,
        });
        // Known once generation ends; absent (not null) before, as OpenAI's schema has it.
        if let Some(usage) = usage {
            object["usage"] = usage;
        }
        object
    }
}

/// Chat usage (`prompt_tokens`, `completion_tokens`) in the Responses API's shape.
fn response_usage(usage: &Value) -> Value {
    let input = usage["prompt_tokens"].as_u64().unwrap_or(0);
    let output = usage["completion_tokens"].as_u64().unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input + output,
    })
}

/// An assistant message item with its text.
fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id, "type": "message", "role": "assistant", "status": status,
        "content": if status == "in_progress" { json!([]) } else {
            json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
        },
    })
}

/// A function-call item.
fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
           "name": name, "arguments": arguments})
}

fn item_id(kind: &str) -> String {
    format!("{kind}_{}", uuid::Uuid::new_v4().simple())
}

/// A response: whole, or its events.
pub enum ResponseReply {
    /// `stream: false`: the Response object (stored when `store`).
    Whole(Value),
    /// `stream: true`: event objects, each with its `type` and `sequence_number`.
    Stream(BoxStream<'static, Value>),
}

/// A response and how its request was routed.
pub struct ResponseAnswer {
    /// The model that serves the request and the classification behind it.
    pub routing: Routing,
    /// The response, whole or streamed.
    pub reply: ResponseReply,
}

/// Creates a response for a validated request, metered under `route`.
pub async fn create_response(
    state: &AppState,
    caller: &Caller,
    request: CreateResponseRequest,
    route: &str,
) -> Result<ResponseAnswer, ApiError> {
    let mut conversation = match &request.previous_response_id {
        Some(id) => {
            let stored = state
                .storage
                .response(&caller.tenant.id, id)
                .await
                .map_err(|e| ApiError::from(e).with_param("previous_response_id"))?;
            serde_json::from_str::<Vec<Value>>(&stored.conversation).map_err(|e| {
                ApiError::new(ErrorCode::Internal, format!("stored response {id}: {e}"))
            })?
        }
        None => Vec::new(),
    };
    conversation.extend(input_messages(&request.input)?);
    let mut messages = Vec::with_capacity(conversation.len() + 1);
    if let Some(instructions) = &request.instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    messages.extend(conversation.iter().cloned());
    let messages: Vec<ChatMessage> = serde_json::from_value(Value::Array(messages))
        .map_err(|e| ApiError::invalid_param("input", e))?;

    let mut extra = Map::new();
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| function_tool(i, t))
            .collect::<Result<Vec<_>, _>>()?;
        extra.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = request.tool_choice.as_ref().filter(|c| !c.is_null()) {
        extra.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(parallel) = request.parallel_tool_calls {
        extra.insert("parallel_tool_calls".into(), parallel.into());
    }
    if let Some(format) = response_format(request.text.as_ref())? {
        extra.insert("response_format".into(), format);
    }
    let chat = ChatCompletionRequest {
        model: request.model.clone(),
        messages,
        max_tokens: None,
        max_completion_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
        stop: None,
        seed: None,
        n: None,
        extra,
    };
    chat.validate().map_err(in_responses_terms)?;
    let echo = Echo::of(&request);
    let answer = chat_completion(state, caller, chat, route)
        .await
        .map_err(in_responses_terms)?;
    let model = answer.routing.model.name().to_owned();
    let record = Record {
        state: state.clone(),
        tenant: caller.tenant.id.clone(),
        id: item_id("resp"),
        created_at: unix_now(),
        model,
        echo,
        conversation,
    };
    let reply = match answer.reply {
        ChatReply::Whole(completion) => {
            let completion = serde_json::to_value(&completion)
                .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
            let choice = &completion["choices"][0];
            let message = &choice["message"];
            let text = message["content"].as_str().unwrap_or("");
            let calls: Vec<Value> = message["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let call_id = c["id"]
                        .as_str()
                        .map_or_else(|| item_id("call"), str::to_owned);
                    let name = c["function"]["name"].as_str().unwrap_or("");
                    let arguments = c["function"]["arguments"].as_str().unwrap_or("{}");
                    call_item(&item_id("fc"), &call_id, name, arguments, "completed")
                })
                .collect();
            let status = status_of(choice["finish_reason"].as_str());
            let mut output = Vec::with_capacity(1 + calls.len());
            if !text.is_empty() || calls.is_empty() {
                output.push(message_item(&item_id("msg"), text, status_item(status)));
            }
            output.extend(calls);
            let body = record.shape().object(
                status,
                output,
                Some(response_usage(&completion["usage"])),
                None,
            );
            record.keep(&body).await?;
            ResponseReply::Whole(body)
        }
        ChatReply::Stream(chunks) => ResponseReply::Stream(events(chunks, record)),
    };
    Ok(ResponseAnswer {
        routing: answer.routing,
        reply,
    })
}

/// `completed`, or `incomplete` when the model ran out of tokens or was filtered.
fn status_of(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length" | "content_filter") => "incomplete",
        _ => "completed",
    }
}

/// An output item's status for a response's.
fn status_item(status: &str) -> &'static str {
    if status == "completed" {
        "completed"
    } else {
        "incomplete"
    }
}

/// What a finished response needs to be stored.
struct Record {
    state: AppState,
    tenant: String,
    id: String,
    created_at: u64,
    model: String,
    echo: Echo,
    /// The conversation without instructions, up to this response's input.
    conversation: Vec<Value>,
}

impl Record {
    fn shape(&self) -> Shape<'_> {
        Shape {
            id: &self.id,
            created_at: self.created_at,
            model: &self.model,
            echo: &self.echo,
        }
    }

    /// Stores the response when asked to, with the conversation it ends
    /// (its output as the assistant's chat message).
    async fn keep(&self, body: &Value) -> Result<(), ApiError> {
        if !self.echo.store {
            return Ok(());
        }
        let output = body["output"].as_array().map_or(&[][..], Vec::as_slice);
        let text: String = output
            .iter()
            .filter(|item| item["type"] == "message")
            .flat_map(|item| item["content"].as_array().into_iter().flatten())
            .filter_map(|part| part["text"].as_str())
            .collect();
        let calls: Vec<Value> = output
            .iter()
            .filter(|item| item["type"] == "function_call")
            .map(|c| {
                json!({"id": c["call_id"], "type": "function",
                       "function": {"name": c["name"], "arguments": c["arguments"]}})
            })
            .collect();
        let mut conversation = self.conversation.clone();
        let mut reply = json!({"role": "assistant", "content": text});
        if !calls.is_empty() {
            reply["tool_calls"] = Value::Array(calls);
        }
        conversation.push(reply);
        let stored = StoredResponse {
            conversation: Value::Array(conversation).to_string(),
            body: body.to_string(),
        };
        self.state
            .storage
            .insert_response(&self.tenant, &self.id, &stored)
            .await
            .map_err(ApiError::from)
    }
}

/// A function call being streamed.
struct StreamedCall {
    output_index: usize,
    item_id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Turns chat chunks into the Responses API's events, in OpenAI's order:
/// `response.created`, `response.in_progress`, per output item `…output_item.added`,
/// its deltas and `…done` events, then `response.completed` (or
/// `response.incomplete`, or `response.failed`) with the whole response.
struct Translator {
    record: Record,
    sequence: u64,
    /// The assistant message: output index, item id and text so far.
    message: Option<(usize, String, String)>,
    calls: BTreeMap<u64, StreamedCall>,
    outputs: usize,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

impl Translator {
    fn event(&mut self, kind: &str, mut body: Value) -> Value {
        body["type"] = kind.into();
        body["sequence_number"] = self.sequence.into();
        self.sequence += 1;
        body
    }

    fn start(&mut self) -> Vec<Value> {
        let response = self
            .record
            .shape()
            .object("in_progress", Vec::new(), None, None);
        vec![
            self.event("response.created", json!({"response": response})),
            self.event("response.in_progress", json!({"response": response})),
        ]
    }

    /// Opens the assistant message item (once).
    fn open_message(&mut self, out: &mut Vec<Value>) {
        if self.message.is_none() {
            let id = item_id("msg");
            let index = self.outputs;
            self.outputs += 1;
            let item = message_item(&id, "", "in_progress");
            out.push(self.event(
                "response.output_item.added",
                json!({"output_index": index, "item": item}),
            ));
            let part =
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            out.push(self.event(
                "response.content_part.added",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
            ));
            self.message = Some((index, id, String::new()));
        }
    }

    fn text(&mut self, delta: &str, out: &mut Vec<Value>) {
        self.open_message(out);
        if let Some((index, id, text)) = self.message.as_mut() {
            text.push_str(delta);
            let body = json!({"item_id": id, "output_index": *index, "content_index": 0,
                              "delta": delta, "logprobs": []});
            out.push(self.event("response.output_text.delta", body));
        }
    }

    fn tool_call_delta(&mut self, call: &Value, out: &mut Vec<Value>) {
        let index = call["index"].as_u64().unwrap_or(0);
        if !self.calls.contains_key(&index) {
            let streamed = StreamedCall {
                output_index: self.outputs,
                item_id: item_id("fc"),
                call_id: call["id"]
                    .as_str()
                    .map_or_else(|| item_id("call"), str::to_owned),
                name: call["function"]["name"].as_str().unwrap_or("").to_owned(),
                arguments: String::new(),
            };
            self.outputs += 1;
            let item = call_item(
                &streamed.item_id,
                &streamed.call_id,
                &streamed.name,
                "",
                "in_progress",
            );
            let added = json!({"output_index": streamed.output_index, "item": item});
            self.calls.insert(index, streamed);
            out.push(self.event("response.output_item.added", added));
        }
        let delta = call["function"]["arguments"].as_str().unwrap_or("");
        if delta.is_empty() {
            return;
        }
        let Some(streamed) = self.calls.get_mut(&index) else {
            return;
        };
        streamed.arguments.push_str(delta);
        let body = json!({"item_id": streamed.item_id, "output_index": streamed.output_index, "delta": delta});
        out.push(self.event("response.function_call_arguments.delta", body));
    }

    fn chunk(&mut self, chunk: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        if let Some(usage) = chunk.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(response_usage(usage));
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                self.text(text, &mut out);
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                self.tool_call_delta(call, &mut out);
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                self.finish_reason = Some(reason.to_owned());
            }
        }
        out
    }

    /// The closing events and the final response (the last event is added by the caller,
    /// once the response is stored).
    fn close(&mut self) -> (Vec<Value>, Value) {
        let status = status_of(self.finish_reason.as_deref());
        let mut out = Vec::new();
        let mut items: Vec<(usize, Value)> = Vec::new();
        // A reply with neither text nor calls is an empty message, as a whole answer has it.
        if self.calls.is_empty() {
            self.open_message(&mut out);
        }
        if let Some((index, id, text)) = self.message.take() {
            let part =
                json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []});
            out.push(self.event(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                ));
            out.push(self.event(
                "response.content_part.done",
                json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
            ));
            let item = message_item(&id, &text, status_item(status));
            out.push(self.event(
                "response.output_item.done",
                json!({"output_index": index, "item": item}),
            ));
            items.push((index, item));
        }
        for call in std::mem::take(&mut self.calls).into_values() {
            out.push(self.event(
                "response.function_call_arguments.done",
                json!({"item_id": call.item_id, "output_index": call.output_index,
                       "name": call.name, "arguments": call.arguments}),
            ));
            let item = call_item(
                &call.item_id,
                &call.call_id,
                &call.name,
                &call.arguments,
                "completed",
            );
            out.push(self.event(
                "response.output_item.done",
                json!({"output_index": call.output_index, "item": item}),
            ));
            items.push((call.output_index, item));
        }
        items.sort_by_key(|(i, _)| *i);
        let output = items.into_iter().map(|(_, item)| item).collect();
        let body = self
            .record
            .shape()
            .object(status, output, self.usage.clone(), None);
        (out, body)
    }

    fn failed(&mut self, error: &ApiError) -> Value {
        let detail = json!({"code": "server_error", "message": error.message()});
        let body = self
            .record
            .shape()
            .object("failed", Vec::new(), None, Some(detail));
        self.event("response.failed", json!({"response": body}))
    }
}

/// The event stream of a streamed response; the response is stored before
/// its last event is sent.
fn events(chunks: BoxStream<'static, ChatStreamItem>, record: Record) -> BoxStream<'static, Value> {
    let mut translator = Translator {
        record,
        sequence: 0,
        message: None,
        calls: BTreeMap::new(),
        outputs: 0,
        finish_reason: None,
        usage: None,
    };
    let pending: VecDeque<Value> = translator.start().into();
    futures_util::stream::unfold(
        (chunks, translator, pending, false),
        |(mut chunks, mut translator, mut pending, mut done)| async move {
            loop {
                if let Some(event) = pending.pop_front() {
                    return Some((event, (chunks, translator, pending, done)));
                }
                if done {
                    return None;
                }
                match chunks.next().await {
                    Some(ChatStreamItem::Chunk(chunk)) => pending.extend(translator.chunk(&chunk)),
                    Some(ChatStreamItem::Error(error)) => {
                        pending.push_back(translator.failed(&error));
                        done = true;
                    }
                    None => {
                        let (closing, body) = translator.close();
                        pending.extend(closing);
                        let status = body["status"].as_str().unwrap_or("completed").to_owned();
                        let last = match translator.record.keep(&body).await {
                            Ok(()) => translator
                                .event(&format!("response.{status}"), json!({"response": body})),
                            Err(e) => translator.failed(&e),
                        };
                        pending.push_back(last);
                        done = true;
                    }
                }
            }
        },
    )
    .boxed()
}

/// The tenant's stored response `id`.
pub async fn retrieve_response(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Value, ApiError> {
    let stored = state.storage.response(&caller.tenant.id, id).await?;
    serde_json::from_str(&stored.body)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("stored response {id}: {e}")))
}

/// Deletes the tenant's stored response `id`.
pub async fn delete_response(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<Value, ApiError> {
    state.storage.delete_response(&caller.tenant.id, id).await?;
    Ok(json!({"id": id, "object": "response", "deleted": true}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_made_together_are_one_assistant_turn_and_outputs_answer_them() {
        let input = ResponseInput::Items(vec![
            json!({"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]}),
            json!({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}),
            json!({"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"x\":1}"}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "one"}),
        ]);
        let messages = input_messages(&input).unwrap_or_default();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert_eq!(messages[0], json!({"role": "user", "content": "ab"}));
        let ids: Vec<&str> = messages[1]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .collect();
        assert_eq!(ids, ["c1", "c2"]);
        assert_eq!(
            messages[2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "one"})
        );
    }

    #[test]
    fn an_unsupported_item_or_part_is_named_by_its_place() {
        for (item, param) in [
            (
                json!({"type": "item_reference", "id": "x"}),
                "input[0].type",
            ),
            (
                json!({"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}),
                "input[0].content[0].type",
            ),
            (json!({"role": "wizard", "content": "hi"}), "input[0].role"),
        ] {
            let refused = input_messages(&ResponseInput::Items(vec![item]));
            assert_eq!(
                refused.err().as_ref().and_then(ApiError::param),
                Some(param)
            );
        }
    }

    #[test]
    fn a_chat_refusal_is_renamed_to_the_responses_field() {
        let e = in_responses_terms(ApiError::invalid_param("response_format", "not honoured"));
        assert_eq!(e.param(), Some("text.format"));
        assert_eq!(e.message(), "text.format: not honoured");
        let e = in_responses_terms(ApiError::invalid_param("tools", "no tools here"));
        assert_eq!(e.param(), Some("tools"));
        let e = in_responses_terms(ApiError::invalid_param(
            "tools[1].function.parameters",
            "bad",
        ));
        assert_eq!(e.param(), Some("tools[1].parameters"));
        assert_eq!(e.message(), "tools[1].parameters: bad");
    }

    #[test]
    fn text_format_becomes_response_format() {
        let text = TextOptions {
            format: Some(
                json!({"type": "json_schema", "name": "n", "schema": {"type": "object"}, "strict": true}),
            ),
            extra: Map::new(),
        };
        assert_eq!(
            response_format(Some(&text)).ok().flatten(),
            Some(
                json!({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}})
            )
        );
    }
}

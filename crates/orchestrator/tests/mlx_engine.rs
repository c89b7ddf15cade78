//! The `mlx` engine on real (tiny, random-weight) checkpoints made by
//! `scripts/make_tiny_model.py`. Asserts structure, never text.
#![cfg(feature = "pymlx")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use futures_util::StreamExt;
use orchestrator::engine::mlx::MlxEngine;
use orchestrator::engine::{Engine, LoadState};
use orchestrator::generation::{Chunk, FinishReason, GenerationRequest, Message, Role};
use orchestrator::{ModelSettings, Tier};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn model_dir(family: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-models")
        .join(family);
    assert!(
        dir.join("config.json").is_file(),
        "{} is missing: run `make test` (scripts/setup-test-env.sh) to create the tiny models",
        dir.display()
    );
    dir.to_string_lossy().into_owned()
}

fn settings(family: &str, resident: bool, idle_unload_secs: u64) -> ModelSettings {
    ModelSettings {
        repo: model_dir(family),
        tier: Some(Tier::Small),
        resident: Some(resident),
        idle_unload_secs,
        ..ModelSettings::default()
    }
}

fn request(max_tokens: u32, temperature: f32, seed: Option<u64>) -> GenerationRequest {
    GenerationRequest {
        messages: vec![
            Message::new(Role::System, "You are terse."),
            Message::new(Role::User, "Tell me about the river and the old mill."),
        ],
        max_tokens,
        temperature,
        top_p: 0.95,
        stop: Vec::new(),
        seed,
        enable_thinking: false,
        prompt_tokens: None,
        extra: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_architecture_generates_and_honours_max_tokens() {
    for family in ["qwen3", "qwen3_moe", "gemma3_text"] {
        let engine = MlxEngine::new(family, &settings(family, true, 600)).unwrap();
        let g = engine.generate(request(12, 0.0, None)).await.unwrap();
        assert!(g.usage.completion_tokens >= 1, "{family}");
        assert!(
            g.usage.completion_tokens <= 12,
            "{family}: {}",
            g.usage.completion_tokens
        );
        assert!(
            g.usage.prompt_tokens > 5,
            "{family}: the chat template was applied"
        );
        if g.finish_reason == FinishReason::Length {
            assert_eq!(g.usage.completion_tokens, 12, "{family}");
        }
        assert!(g.usage.tokens_per_second >= 0.0);
        assert_eq!(engine.load_state(), LoadState::Loaded);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_deltas_then_done_matching_a_whole_generation() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    let whole = engine.generate(request(24, 0.0, None)).await.unwrap();
    let mut stream = engine.stream(request(24, 0.0, None)).await.unwrap();
    let mut text = String::new();
    let mut deltas = 0;
    let mut done = None;
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            Chunk::Delta(d) => {
                assert!(done.is_none(), "no delta after done");
                text.push_str(&d);
                deltas += 1;
            }
            Chunk::Done {
                finish_reason,
                usage,
            } => done = Some((finish_reason, usage)),
            Chunk::Upstream { .. } => panic!("the mlx engine has no upstream"),
        }
    }
    let (finish, usage) = done.expect("the stream ends with done");
    assert!(deltas >= 2, "tokens arrive one by one, not at the end");
    assert_eq!(text, whole.text, "greedy decoding is deterministic");
    assert_eq!(finish, whole.finish_reason);
    assert_eq!(usage.completion_tokens, whole.usage.completion_tokens);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_makes_sampling_reproducible() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    let a = engine.generate(request(24, 1.0, Some(7))).await.unwrap();
    let b = engine.generate(request(24, 1.0, Some(7))).await.unwrap();
    assert_eq!(a.text, b.text);
    let mut differs = false;
    for seed in 8..12 {
        differs |= engine
            .generate(request(24, 1.0, Some(seed)))
            .await
            .unwrap()
            .text
            != a.text;
    }
    assert!(differs, "other seeds sample other text");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_resident_model_loads_on_first_use_and_unloads_when_idle() {
    let engine = MlxEngine::new("qwen3_moe", &settings("qwen3_moe", false, 1)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        engine.load_state(),
        LoadState::Unloaded,
        "not loaded before use"
    );
    engine.generate(request(4, 0.0, None)).await.unwrap();
    assert_eq!(engine.load_state(), LoadState::Loaded);
    let deadline = Instant::now() + Duration::from_secs(10);
    while engine.load_state() != LoadState::Unloaded {
        assert!(
            Instant::now() < deadline,
            "not unloaded after the idle time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.generate(request(4, 0.0, None)).await.unwrap();
    assert_eq!(engine.load_state(), LoadState::Loaded, "reloads on demand");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_queued_not_interleaved() {
    let engine =
        std::sync::Arc::new(MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap());
    let solo: Vec<String> = {
        let mut v = Vec::new();
        for seed in 0..4 {
            v.push(
                engine
                    .generate(request(16, 1.0, Some(seed)))
                    .await
                    .unwrap()
                    .text,
            );
        }
        v
    };
    let handles: Vec<_> = (0..4u64)
        .map(|seed| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .generate(request(16, 1.0, Some(seed)))
                    .await
                    .unwrap()
                    .text
            })
        })
        .collect();
    for (seed, h) in handles.into_iter().enumerate() {
        assert_eq!(
            h.await.unwrap(),
            solo[seed],
            "request {seed} ran alone, as if by itself"
        );
    }
}

/// What the deployments' overflow trigger reads: the worker's real queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_reports_its_queue_and_the_request_it_runs() {
    use orchestrator::engine::EngineLoad;
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    assert_eq!(engine.load(), Some(EngineLoad::default()));
    // Three streams nobody reads: the first runs (until its channel is
    // full), the other two wait their turn.
    let mut streams = Vec::new();
    for seed in 0..3 {
        streams.push(engine.stream(request(400, 1.0, Some(seed))).await.unwrap());
    }
    let expected = Some(EngineLoad {
        queued: 2,
        running: 1,
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.load() != expected {
        assert!(Instant::now() < deadline, "{:?}", engine.load());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Read one to its end: it leaves, the next runs.
    let first: Vec<_> = streams.remove(0).collect().await;
    assert!(matches!(first.last(), Some(Ok(Chunk::Done { .. }))));
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.load() != Some(EngineLoad::default()) {
        assert!(Instant::now() < deadline, "{:?}", engine.load());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_model_is_reported_as_unavailable() {
    let mut s = settings("qwen3", false, 600);
    s.repo = "/nonexistent/model-dir".into();
    let engine = MlxEngine::new("ghost", &s).unwrap();
    let err = engine.generate(request(4, 0.0, None)).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/model-dir"), "{err}");
    assert_eq!(engine.load_state(), LoadState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_sequences_cut_the_reply_in_whole_and_streamed_generation() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    let full = engine.generate(request(40, 0.0, None)).await.unwrap().text;
    let chars: Vec<(usize, char)> = full.char_indices().collect();
    assert!(chars.len() > 12, "need some text to cut: {full:?}");
    let (start, _) = chars[chars.len() / 2];
    let end = chars
        .get(chars.len() / 2 + 3)
        .map_or(full.len(), |(i, _)| *i);
    let stop = full[start..end].to_owned();
    let expected = &full[..full.find(&stop).unwrap()];

    let mut req = request(40, 0.0, None);
    req.stop = vec![stop.clone()];
    let whole = engine.generate(req.clone()).await.unwrap();
    assert_eq!(whole.text, expected);
    assert_eq!(whole.finish_reason, FinishReason::Stop);

    let mut streamed = String::new();
    let mut stream = engine.stream(req).await.unwrap();
    while let Some(chunk) = stream.next().await {
        if let Chunk::Delta(d) = chunk.unwrap() {
            streamed.push_str(&d);
        }
    }
    assert_eq!(
        streamed, expected,
        "no part of the stop sequence is ever sent"
    );
}

fn with_extra(mut r: GenerationRequest, extra: serde_json::Value) -> GenerationRequest {
    r.extra = extra.as_object().cloned().unwrap();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_is_met_by_constrained_decoding_whole_and_streamed() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    let schema = serde_json::json!({
        "type": "object", "additionalProperties": false, "required": ["n", "ok"],
        "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}, "ok": {"type": "boolean"}}
    });
    let format = serde_json::json!({"response_format": {"type": "json_schema",
        "json_schema": {"name": "t", "schema": schema, "strict": true}}});
    for seed in 0..3 {
        let g = engine
            .generate(with_extra(request(120, 1.0, Some(seed)), format.clone()))
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&g.text).unwrap();
        assert!(
            value["n"].as_u64().unwrap() <= 9 && value["ok"].is_boolean(),
            "{value}"
        );
        let choices = g.choices.unwrap();
        assert_eq!(choices[0]["message"]["content"], g.text.as_str());
    }
    let mut stream = engine
        .stream(with_extra(request(120, 1.0, Some(5)), format))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        match chunk.unwrap() {
            Chunk::Upstream { text: t, choices } => {
                assert_eq!(choices[0]["index"], 0);
                text.push_str(&t);
            }
            Chunk::Delta(_) => panic!("a rich stream sends OpenAI-shaped choices"),
            Chunk::Done { finish_reason, .. } => assert_eq!(finish_reason, FinishReason::Stop),
        }
    }
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(value.is_object(), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_tool_call_n_choices_and_logprobs_come_as_openai_choices() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    let tools = serde_json::json!({"tool_choice": "required", "n": 2, "logprobs": true,
        "top_logprobs": 2, "tools": [{"type": "function", "function": {"name": "f",
        "parameters": {"type": "object", "properties": {"x": {"type": "integer",
        "minimum": 0, "maximum": 99}}, "required": ["x"], "additionalProperties": false}}}]});
    let g = engine
        .generate(with_extra(request(200, 1.0, Some(1)), tools))
        .await
        .unwrap();
    assert_eq!(g.finish_reason, FinishReason::ToolCalls);
    let choices = g.choices.unwrap();
    assert_eq!(choices.as_array().unwrap().len(), 2);
    for (i, choice) in choices.as_array().unwrap().iter().enumerate() {
        assert_eq!(choice["index"], i);
        let call = &choice["message"]["tool_calls"][0];
        assert_eq!(call["function"]["name"], "f");
        let args: serde_json::Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["x"].as_u64().unwrap() <= 99);
        for token in choice["logprobs"]["content"].as_array().unwrap() {
            assert_eq!(token["top_logprobs"].as_array().unwrap().len(), 2);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_it_does_not_honour_are_refused_by_name() {
    let engine = MlxEngine::new("qwen3", &settings("qwen3", true, 600)).unwrap();
    for (extra, param) in [
        (serde_json::json!({"user": "u"}), "user"),
        (
            serde_json::json!({"top_logprobs": 30, "logprobs": true}),
            "top_logprobs",
        ),
        (
            serde_json::json!({"functions": [{"name": "f"}]}),
            "functions",
        ),
    ] {
        let e = engine
            .generate(with_extra(request(4, 0.0, None), extra))
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(message.starts_with(&format!("{param}: ")), "{message}");
    }
}

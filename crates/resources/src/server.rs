//! The MCP server: one `rmcp` handler over the catalogue, and its transports.

use crate::backend::{BackendError, HarpoonBackend};
use crate::catalogue::{self, ResourceUri};
use crate::prompts::{self, PromptError};
use crate::tools::{self, names};
use axum::http::request::Parts;
use harpoon_bridge::{NewCovenant, Page, StrikeRequest};
use rmcp::model::{
    CacheScope, CallToolRequestMethod, CallToolRequestParams, CallToolResponse, CallToolResult,
    CancelTaskMethod, CompleteRequestMethod, ConstString, ContentBlock, CustomRequest,
    CustomResult, DiscoverRequestMethod, ErrorCode, GetPromptRequestMethod, GetPromptRequestParams,
    GetPromptResponse, GetSkillRequestMethod, GetTaskMethod, Implementation,
    InitializeResultMethod, JsonObject, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListSkillsRequestMethod, ListToolsRequestMethod, ListToolsResult,
    PaginatedRequestParams, PingRequestMethod, ReadResourceDirectoryRequestMethod,
    ReadResourceRequestMethod, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult,
    ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SetLevelRequestMethod, SubscribeRequestMethod, SubscribeRequestParams, SubscriptionFilter,
    SubscriptionsListenRequestMethod, Tool, UnsubscribeRequestMethod, UnsubscribeRequestParams,
    UpdateTaskMethod,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the server tells a client about itself at start-up.
const INSTRUCTIONS: &str = "Harpoon is an LLM gateway. Resources: harpoon://models (models and load state), \
harpoon://usage (your usage), harpoon://pools (hosted·ai pools), harpoon://covenants and \
harpoon://covenants/{id}, harpoon://strikes/{run_id}. Tools classify and run prompts, fuse code fragments, \
and create covenants and strikes; prompts draft covenants, review their harmony, delegate strikes and \
improve fragment hygiene. Everything is scoped to your tenant.";

/// Covenants per `resources/list` page; the cursor is the next offset.
const COVENANTS_PER_LIST: u32 = 200;

/// How often a subscribed resource is read again to see whether it changed.
pub const SUBSCRIPTION_POLL: Duration = Duration::from_secs(2);

/// One session's resource subscriptions; dropping the session's handler ends
/// their watchers.
#[derive(Debug, Default)]
struct Subscriptions(Mutex<HashMap<String, CancellationToken>>);

impl Subscriptions {
    fn insert(&self, uri: String, token: CancellationToken) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = map.insert(uri, token) {
            old.cancel();
        }
    }

    fn remove(&self, uri: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = map.remove(uri) {
            token.cancel();
        }
    }
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        let map = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        for token in map.values() {
            token.cancel();
        }
    }
}

/// The MCP handler: the catalogue over a [`HarpoonBackend`].
pub struct HarpoonMcp<B: HarpoonBackend> {
    backend: Arc<B>,
    /// The caller when the transport has no HTTP request to carry one (stdio).
    fixed: Option<B::Caller>,
    subscriptions: Arc<Subscriptions>,
}

impl<B: HarpoonBackend> Clone for HarpoonMcp<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            fixed: self.fixed.clone(),
            subscriptions: self.subscriptions.clone(),
        }
    }
}

impl<B: HarpoonBackend> HarpoonMcp<B> {
    /// A handler for HTTP: each request's caller comes from the request's
    /// extensions, put there by the service's authentication.
    pub fn for_http(backend: Arc<B>) -> Self {
        Self {
            backend,
            fixed: None,
            subscriptions: Arc::default(),
        }
    }

    /// The same handler for a new session: shared backend, no subscriptions.
    fn for_new_session(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            fixed: self.fixed.clone(),
            subscriptions: Arc::default(),
        }
    }

    /// A handler acting for one caller throughout (stdio).
    pub fn for_caller(backend: Arc<B>, caller: B::Caller) -> Self {
        Self {
            backend,
            fixed: Some(caller),
            subscriptions: Arc::default(),
        }
    }

    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<B::Caller, ErrorData> {
        // Over HTTP the caller is the request's own, never a fixed one: a
        // request that arrived without one must not borrow another identity.
        if let Some(parts) = context.extensions.get::<Parts>() {
            return parts.extensions.get::<B::Caller>().cloned().ok_or_else(|| {
                ErrorData::internal_error("the request carries no authenticated caller", None)
            });
        }
        self.fixed
            .clone()
            .ok_or_else(|| ErrorData::internal_error("no caller for this transport", None))
    }

    async fn read(&self, caller: &B::Caller, uri: &ResourceUri) -> Result<Value, BackendError> {
        let backend = &self.backend;
        match uri {
            ResourceUri::Models => backend.models(caller).await,
            ResourceUri::Usage => backend.usage(caller).await,
            ResourceUri::Pools => backend.pools(caller).await,
            ResourceUri::Covenants => {
                to_json(&backend.list_covenants(caller, Page::default()).await?)
            }
            ResourceUri::Covenant(id) => to_json(&backend.get_covenant(caller, id).await?),
            ResourceUri::Strike(id) => to_json(&backend.strike_status(caller, id).await?),
        }
    }

    /// Re-reads `watched` for `caller` every [`SUBSCRIPTION_POLL`] until `stop`
    /// resolves or `notify` reports the client gone, notifying each URI whose
    /// content changed.
    async fn watch<F, Fut>(
        &self,
        caller: &B::Caller,
        watched: Vec<(ResourceUri, Value)>,
        stop: impl std::future::Future<Output = ()>,
        mut notify: F,
    ) where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut watched: Vec<(ResourceUri, Value)> = watched
            .into_iter()
            .map(|(uri, first)| {
                let fingerprint = catalogue::fingerprint(&uri, &first);
                (uri, fingerprint)
            })
            .collect();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(SUBSCRIPTION_POLL) => {}
            }
            for (uri, last) in &mut watched {
                let Ok(value) = self.read(caller, uri).await else {
                    continue; // a failed read is not a change
                };
                let now = catalogue::fingerprint(uri, &value);
                if now != *last {
                    *last = now;
                    if !notify(uri.uri()).await {
                        return;
                    }
                }
            }
        }
    }

    async fn call(
        &self,
        caller: &B::Caller,
        name: &str,
        args: JsonObject,
    ) -> Result<Result<Value, BackendError>, ErrorData> {
        let b = &self.backend;
        Ok(match name {
            names::CLASSIFY => match parse(args) {
                Ok(a) => b.classify(caller, a).await,
                Err(e) => Err(e),
            },
            names::RUN => match parse(args) {
                Ok(a) => b.run(caller, a).await,
                Err(e) => Err(e),
            },
            names::PROCESS_FRAGMENTS => match parse(args) {
                Ok(a) => b.process_fragments(caller, a).await,
                Err(e) => Err(e),
            },
            names::CREATE_COVENANT => match parse::<NewCovenant>(args) {
                Ok(a) => b.create_covenant(caller, a).await.and_then(|c| to_json(&c)),
                Err(e) => Err(e),
            },
            names::HARMONY_REVIEW => match parse::<tools::CovenantIdArgs>(args) {
                Ok(a) => b
                    .harmony_review(caller, &a.covenant_id)
                    .await
                    .and_then(|r| to_json(&r)),
                Err(e) => Err(e),
            },
            // REST's 202 body.
            names::START_STRIKE => match parse::<StrikeRequest>(args) {
                Ok(a) => b
                    .start_strike(caller, a)
                    .await
                    .map(|run_id| json!({ "run_id": run_id })),
                Err(e) => Err(e),
            },
            names::STRIKE_STATUS => match parse::<tools::StrikeStatusArgs>(args) {
                Ok(a) => b
                    .strike_status(caller, &a.run_id)
                    .await
                    .and_then(|s| to_json(&s)),
                Err(e) => Err(e),
            },
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool is named {other:?}"),
                    None,
                ));
            }
        })
    }
}

/// Tool arguments against their type: a mismatch is the caller's to fix, so
/// it comes back as a tool error naming the field, like REST's 422.
fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T, BackendError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            BackendError::invalid(inner.to_string())
        } else {
            BackendError::invalid(format!("{path}: {inner}"))
        }
    })
}

/// A record as the JSON REST would send.
fn to_json<T: Serialize>(value: &T) -> Result<Value, BackendError> {
    serde_json::to_value(value).map_err(|e| BackendError::internal(format!("serialising: {e}")))
}

/// A backend refusal as an MCP protocol error (resources and prompts, which
/// have no error result of their own).
fn protocol_error(error: &BackendError) -> ErrorData {
    let data = Some(error.to_json());
    match error.status() {
        404 => ErrorData::resource_not_found(error.message().to_owned(), data),
        s if (400..500).contains(&s) => ErrorData::invalid_params(error.message().to_owned(), data),
        _ => ErrorData::internal_error(error.message().to_owned(), data),
    }
}

/// A backend refusal while rendering a prompt. What the arguments name is
/// missing (404) or unusable: the arguments are at fault, -32602 as for a
/// missing argument, not -32002, which is `resources/read`'s answer for a URI.
fn prompt_error(error: &BackendError) -> ErrorData {
    if error.is_client_error() {
        ErrorData::invalid_params(error.message().to_owned(), Some(error.to_json()))
    } else {
        protocol_error(error)
    }
}

/// The requests of the protocol a client may send. `rmcp` reads a request
/// whose `params` do not fit its method (absent where required, or of the
/// wrong shape) as a custom request of that name, which would be answered
/// "method not found".
const CLIENT_METHODS: &[&str] = &[
    InitializeResultMethod::VALUE,
    PingRequestMethod::VALUE,
    DiscoverRequestMethod::VALUE,
    CompleteRequestMethod::VALUE,
    SetLevelRequestMethod::VALUE,
    GetPromptRequestMethod::VALUE,
    ListPromptsRequestMethod::VALUE,
    ListResourcesRequestMethod::VALUE,
    ListResourceTemplatesRequestMethod::VALUE,
    ReadResourceRequestMethod::VALUE,
    SubscriptionsListenRequestMethod::VALUE,
    SubscribeRequestMethod::VALUE,
    UnsubscribeRequestMethod::VALUE,
    CallToolRequestMethod::VALUE,
    ListToolsRequestMethod::VALUE,
    GetTaskMethod::VALUE,
    UpdateTaskMethod::VALUE,
    CancelTaskMethod::VALUE,
    ListSkillsRequestMethod::VALUE,
    GetSkillRequestMethod::VALUE,
    ReadResourceDirectoryRequestMethod::VALUE,
];

/// Why `params` do not fit `T`, the params of `method`.
fn misfit<T: DeserializeOwned>(method: &str, params: Option<&Value>) -> String {
    let Some(params) = params else {
        return format!("{method} requires params");
    };
    match serde_path_to_error::deserialize::<_, T>(params.clone()) {
        Ok(_) => format!("{method}: params do not fit the method"),
        Err(e) => {
            let path = e.path().to_string();
            if path == "." {
                format!("{method}: {}", e.into_inner())
            } else {
                format!("{method}: {path}: {}", e.into_inner())
            }
        }
    }
}

/// The answer to a custom request: -32602 for a method of the protocol whose
/// params did not fit it, else -32601.
fn custom_request_error(request: &CustomRequest) -> ErrorData {
    let (method, params) = (request.method.as_str(), request.params.as_ref());
    if !CLIENT_METHODS.contains(&method) {
        return ErrorData::new(ErrorCode::METHOD_NOT_FOUND, method.to_owned(), None);
    }
    let message = match method {
        CallToolRequestMethod::VALUE => misfit::<CallToolRequestParams>(method, params),
        GetPromptRequestMethod::VALUE => misfit::<GetPromptRequestParams>(method, params),
        ReadResourceRequestMethod::VALUE => misfit::<ReadResourceRequestParams>(method, params),
        SubscribeRequestMethod::VALUE => misfit::<SubscribeRequestParams>(method, params),
        UnsubscribeRequestMethod::VALUE => misfit::<UnsubscribeRequestParams>(method, params),
        _ => format!("{method}: params are missing or do not fit the method"),
    };
    ErrorData::invalid_params(message, None)
}

fn json_text(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

impl<B: HarpoonBackend> ServerHandler for HarpoonMcp<B> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_prompts()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new("harpoon", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context)?;
        // The cursor is the offset of the next page of covenants; the fixed
        // resources open the first page.
        let offset = match request.and_then(|r| r.cursor) {
            None => 0,
            Some(cursor) => cursor.parse::<u64>().map_err(|_| {
                ErrorData::invalid_params(
                    format!("cursor {cursor:?} is not one this server gave"),
                    None,
                )
            })?,
        };
        let mut resources = if offset == 0 {
            catalogue::fixed()
        } else {
            Vec::new()
        };
        let page = Page {
            limit: COVENANTS_PER_LIST,
            offset,
        };
        let covenants = self
            .backend
            .list_covenants(&caller, page)
            .await
            .map_err(|e| protocol_error(&e))?;
        resources.extend(covenants.items.iter().map(catalogue::covenant));
        // Tenant-scoped: no cache may serve it to anyone else.
        let mut result = ListResourcesResult::with_all_items(resources)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private);
        result.next_cursor = covenants.next_offset.map(|o| o.to_string());
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            catalogue::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let uri = known_uri(&request.uri)?;
        let value = self
            .read(&caller, &uri)
            .await
            .map_err(|e| protocol_error(&e))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(json_text(&value), request.uri).with_mime_type(catalogue::JSON),
        ])
        .with_ttl_ms(0)
        .with_cache_scope(CacheScope::Private)
        .into())
    }

    // Protocol versions up to 2025-11-25 subscribe per URI; the watcher reads
    // the resource for the subscriber's tenant and notifies on change.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let caller = self.caller(&context)?;
        let uri = known_uri(&request.uri)?;
        // A subscription to something the caller cannot read is refused now,
        // not left to fail silently later.
        let first = self
            .read(&caller, &uri)
            .await
            .map_err(|e| protocol_error(&e))?;
        let token = CancellationToken::new();
        self.subscriptions
            .insert(request.uri.clone(), token.clone());
        let (this, peer) = (self.for_new_session(), context.peer.clone());
        tokio::spawn(async move {
            let stop = token.cancelled();
            this.watch(&caller, vec![(uri, first)], stop, |uri| {
                let peer = peer.clone();
                async move {
                    !peer.is_transport_closed()
                        && peer
                            .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                            .await
                            .is_ok()
                }
            })
            .await;
        });
        Ok(())
    }

    // Protocol 2026-07-28: one `subscriptions/listen` stream for a set of URIs.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| ResourceUri::parse(uri).is_some())
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = Some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let caller = self.caller(context.request_context())?;
        let mut watched = Vec::new();
        for raw in context.accepted().resource_subscriptions.iter().flatten() {
            let Some(uri) = ResourceUri::parse(raw) else {
                continue;
            };
            let first = self
                .read(&caller, &uri)
                .await
                .map_err(|e| protocol_error(&e))?;
            watched.push((uri, first));
        }
        let sink = context.sink();
        self.watch(&caller, watched, context.cancelled(), |uri| async move {
            sink.notify_resource_updated(uri).await.is_ok()
        })
        .await;
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.subscriptions.remove(&request.uri);
        Ok(())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(prompts::catalogue()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let args = request.arguments.unwrap_or_default();
        match prompts::render(self.backend.as_ref(), &caller, &request.name, &args).await {
            Ok(result) => Ok(result.into()),
            Err(PromptError::Backend(e)) => Err(prompt_error(&e)),
            Err(e) => Err(ErrorData::invalid_params(e.to_string(), None)),
        }
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(custom_request_error(&request))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::catalogue()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::catalogue().into_iter().find(|t| t.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let args = request.arguments.unwrap_or_default();
        let result = match self.call(&caller, &request.name, args).await? {
            Ok(value) => CallToolResult::success(vec![ContentBlock::text(json_text(&value))]),
            // The REST envelope, so a client (or model) sees the same code and
            // message as over HTTP, and whether retrying could help.
            Err(e) => {
                tracing::debug!(tool = %request.name, error = %e, "tool refused");
                CallToolResult::error(vec![ContentBlock::text(json_text(&e.to_json()))])
            }
        };
        Ok(result.into())
    }
}

/// How the Streamable HTTP endpoint guards itself.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Accept only loopback `Host` headers (DNS-rebinding protection). Right
    /// when nothing else guards the endpoint; with API keys it is not needed
    /// and would refuse a public host name.
    pub loopback_hosts_only: bool,
    /// Largest accepted POST body.
    pub max_body_bytes: usize,
    /// Cancelled when the service shuts down: open sessions and streams end.
    pub shutdown: CancellationToken,
    /// No sessions: each request stands alone (any replica can answer it),
    /// answered as JSON.
    pub stateless: bool,
}

/// The Streamable HTTP endpoint over a backend, with its sessions bound to
/// the callers that opened them.
pub type McpHttpService = axum::Router;

/// Header carrying the session id (Streamable HTTP).
const SESSION_HEADER: &str = "mcp-session-id";

/// Who opened each session the SDK holds. The SDK itself accepts any request
/// carrying a live session id, so without this a caller holding another
/// tenant's id could read its GET stream (resource notifications included)
/// or end it with DELETE.
struct SessionOwners<B: HarpoonBackend> {
    backend: Arc<B>,
    sessions: Arc<LocalSessionManager>,
    /// Session id → [`HarpoonBackend::session_owner`] of its initialiser.
    owners: Mutex<HashMap<String, String>>,
}

impl<B: HarpoonBackend> SessionOwners<B> {
    fn owner_of(&self, id: &str) -> Option<String> {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.get(id).cloned()
    }

    /// Records a new session, forgetting those the SDK has since dropped
    /// (idle expiry, shutdown), so the map stays as large as the live set.
    async fn bind(&self, id: String, owner: String) {
        let live = self.sessions.sessions.read().await;
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.retain(|known, _| live.contains_key(known.as_str()));
        owners.insert(id, owner);
    }

    fn forget(&self, id: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.remove(id);
    }
}

/// What the SDK answers for an unknown session, so a foreign id cannot be
/// told apart from one that never existed.
fn session_not_found() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        "Not Found: Session not found",
    )
        .into_response()
}

/// Lets a request with a session id through only when its caller is the one
/// that opened the session (else 404, as for an unknown id), and records the
/// opener of each new session.
async fn bind_sessions<B: HarpoonBackend>(
    axum::extract::State(guard): axum::extract::State<Arc<SessionOwners<B>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let owner = request
        .extensions()
        .get::<B::Caller>()
        .map(|caller| guard.backend.session_owner(caller));
    let session = request
        .headers()
        .get(SESSION_HEADER)
        .map(|v| v.to_str().map(str::to_owned));
    match session {
        Some(Ok(id)) => {
            // Unknown ids are refused here too: every id a client can know
            // was recorded before the answer that carried it was sent.
            if owner.is_none() || guard.owner_of(&id) != owner {
                return session_not_found();
            }
            let ending = request.method() == axum::http::Method::DELETE;
            let response = next.run(request).await;
            if ending && response.status().is_success() {
                guard.forget(&id);
            }
            response
        }
        Some(Err(_)) => session_not_found(),
        None => {
            let response = next.run(request).await;
            let opened = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let (Some(id), Some(owner)) = (opened, owner) {
                guard.bind(id, owner).await;
            }
            response
        }
    }
}

/// The Streamable HTTP service, to mount with `Router::nest_service("/mcp", …)`
/// behind the service's authentication, which must put the request's
/// `B::Caller` into its extensions.
pub fn http_service<B: HarpoonBackend>(backend: Arc<B>, options: HttpOptions) -> McpHttpService {
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(options.shutdown);
    if options.stateless {
        config = config
            .with_legacy_session_mode(false)
            .with_json_response(true);
    }
    if !options.loopback_hosts_only {
        config = config.disable_allowed_hosts();
    }
    let sessions = Arc::new(LocalSessionManager::default());
    let guard = Arc::new(SessionOwners {
        backend: backend.clone(),
        sessions: sessions.clone(),
        owners: Mutex::default(),
    });
    let handler = HarpoonMcp::for_http(backend);
    let service =
        StreamableHttpService::new(move || Ok(handler.for_new_session()), sessions, config);
    axum::Router::new()
        .fallback_service(service)
        .layer(axum::middleware::from_fn_with_state(
            guard,
            bind_sessions::<B>,
        ))
        // Outermost: `rmcp` checks headers and body before sessions.
        .layer(axum::middleware::from_fn_with_state(
            options.max_body_bytes,
            crate::conformance::conform,
        ))
}

/// Why the stdio server stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    /// The client never completed initialisation.
    #[error("MCP initialisation over stdio failed: {0}")]
    Initialize(String),
    /// The server task failed.
    #[error("MCP server task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Serves MCP on stdin/stdout for `caller` until the client closes stdin.
/// Nothing else may write to stdout meanwhile: it carries the protocol.
pub async fn serve_stdio<B: HarpoonBackend>(
    backend: Arc<B>,
    caller: B::Caller,
) -> Result<(), StdioError> {
    let running = HarpoonMcp::for_caller(backend, caller)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Initialize(e.to_string()))?;
    let reason = running.waiting().await?;
    tracing::info!(?reason, "MCP stdio session ended");
    Ok(())
}

/// A resource URI of the catalogue, or the MCP "resource not found" error.
fn known_uri(uri: &str) -> Result<ResourceUri, ErrorData> {
    ResourceUri::parse(uri).ok_or_else(|| {
        ErrorData::resource_not_found(format!("no resource has the URI {uri:?}"), None)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tools::ClassifyArgs;
    use rmcp::model::ErrorCode;
    use serde_json::json;

    fn object(value: Value) -> JsonObject {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn argument_errors_name_the_field_and_are_the_callers_to_fix() {
        let wrong = parse::<ClassifyArgs>(object(json!({"text": 5}))).unwrap_err();
        assert!(wrong.is_client_error());
        assert!(wrong.message().starts_with("text: "), "{}", wrong.message());
        // The bridge's own request types, as REST takes them.
        let nested = parse::<StrikeRequest>(object(json!({
            "covenant_id": "cov_1",
            "changes": [{"repo": "acme/web", "files": [{"path": "a.txt"}]}]
        })))
        .unwrap_err();
        assert!(
            nested.message().starts_with("changes[0].files[0]"),
            "{}",
            nested.message()
        );
        assert!(nested.message().contains("content"), "{}", nested.message());
        let covenant = parse::<NewCovenant>(object(json!({
            "title": "t", "description": "d",
            "reality_state": {"description": "today", "key_aspects": "one"},
            "target_state": {"description": "goal"}
        })))
        .unwrap_err();
        assert!(
            covenant.message().contains("key_aspects"),
            "{}",
            covenant.message()
        );
        let missing =
            parse::<NewCovenant>(object(json!({"title": "t", "description": "d"}))).unwrap_err();
        assert!(
            missing.message().contains("reality_state"),
            "{}",
            missing.message()
        );
        // Unknown fields of a covenant are its metadata, as over REST.
        let kept = parse::<NewCovenant>(object(json!({
            "title": "t", "description": "d",
            "reality_state": {"description": "today"},
            "target_state": {"description": "goal"},
            "owner": "platform"
        })))
        .unwrap();
        assert_eq!(kept.metadata["owner"], "platform");
        let extra = parse::<ClassifyArgs>(object(json!({"text": "x", "colour": 1}))).unwrap_err();
        assert!(extra.message().contains("colour"));
    }

    #[test]
    fn backend_refusals_map_to_protocol_codes() {
        let missing = protocol_error(&BackendError::not_found("covenant x"));
        assert_eq!(missing.code, ErrorCode::RESOURCE_NOT_FOUND);
        let invalid = protocol_error(&BackendError::invalid("bad"));
        assert_eq!(invalid.code, ErrorCode::INVALID_PARAMS);
        let down = protocol_error(&BackendError::new(503, "hosted_ai_not_configured", "no"));
        assert_eq!(down.code, ErrorCode::INTERNAL_ERROR);
        assert_eq!(down.data.unwrap()["error"]["status"], 503);
    }

    #[test]
    fn a_prompt_argument_naming_nothing_is_invalid_params() {
        let missing = prompt_error(&BackendError::not_found("covenant cov_nope"));
        assert_eq!(missing.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(missing.data.unwrap()["error"]["status"], 404);
        let down = prompt_error(&BackendError::new(503, "hosted_ai_not_configured", "no"));
        assert_eq!(down.code, ErrorCode::INTERNAL_ERROR);
    }

    #[test]
    fn protocol_methods_with_unfit_params_are_invalid_params() {
        let no_params = custom_request_error(&CustomRequest::new("tools/call", None));
        assert_eq!(no_params.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(no_params.message, "tools/call requires params");
        let wrong =
            custom_request_error(&CustomRequest::new("prompts/get", Some(json!({"name": 5}))));
        assert_eq!(wrong.code, ErrorCode::INVALID_PARAMS);
        assert!(
            wrong.message.starts_with("prompts/get: name: "),
            "{}",
            wrong.message
        );
        let other = custom_request_error(&CustomRequest::new("logging/setLevel", None));
        assert_eq!(other.code, ErrorCode::INVALID_PARAMS);
        let unknown = custom_request_error(&CustomRequest::new("tools/explode", None));
        assert_eq!(unknown.code, ErrorCode::METHOD_NOT_FOUND);
        assert_eq!(unknown.message, "tools/explode");
    }
}

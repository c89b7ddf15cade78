//! The MCP server: one `rmcp` handler over the catalogue, and its transports.

use crate::backend::{BackendError, HarpoonBackend};
use crate::catalogue::{self, ResourceUri};
use crate::prompts::{self, PromptError};
use crate::tools::{self, names};
use axum::http::request::Parts;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    GetPromptRequestParams, GetPromptResponse, Implementation, JsonObject, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResourceContents,
    ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, ServerHandler, ServiceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the server tells a client about itself at start-up.
const INSTRUCTIONS: &str = "Harpoon is an LLM gateway. Resources: harpoon://models (models and load state), \
harpoon://usage (your usage), harpoon://pools (hosted·ai pools), harpoon://covenants and \
harpoon://covenants/{id}, harpoon://strikes/{run_id}. Tools classify and run prompts, fuse code fragments, \
and create covenants and strikes; prompts draft covenants, review their harmony, delegate strikes and \
improve fragment hygiene. Everything is scoped to your tenant.";

/// The MCP handler: the catalogue over a [`HarpoonBackend`].
pub struct HarpoonMcp<B: HarpoonBackend> {
    backend: Arc<B>,
    /// The caller when the transport has no HTTP request to carry one (stdio).
    fixed: Option<B::Caller>,
}

impl<B: HarpoonBackend> Clone for HarpoonMcp<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
            fixed: self.fixed.clone(),
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
        }
    }

    /// A handler acting for one caller throughout (stdio).
    pub fn for_caller(backend: Arc<B>, caller: B::Caller) -> Self {
        Self {
            backend,
            fixed: Some(caller),
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
            ResourceUri::Covenants => backend.list_covenants(caller).await.map(Value::Array),
            ResourceUri::Covenant(id) => backend.get_covenant(caller, id).await,
            ResourceUri::Strike(id) => backend.strike_status(caller, id).await,
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
            names::CREATE_COVENANT => match parse(args) {
                Ok(a) => b.create_covenant(caller, a).await,
                Err(e) => Err(e),
            },
            names::HARMONY_REVIEW => match parse::<tools::CovenantIdArgs>(args) {
                Ok(a) => b.harmony_review(caller, &a.covenant_id).await,
                Err(e) => Err(e),
            },
            names::START_STRIKE => match parse(args) {
                Ok(a) => b.start_strike(caller, a).await,
                Err(e) => Err(e),
            },
            names::STRIKE_STATUS => match parse::<tools::StrikeStatusArgs>(args) {
                Ok(a) => b.strike_status(caller, &a.run_id).await,
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

fn json_text(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

impl<B: HarpoonBackend> ServerHandler for HarpoonMcp<B> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_resources()
                .enable_prompts()
                .enable_tools()
                .build(),
        )
        .with_server_info(Implementation::new("harpoon", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self.caller(&context)?;
        let mut resources = catalogue::fixed();
        match self.backend.list_covenants(&caller).await {
            Ok(list) => resources.extend(list.iter().filter_map(catalogue::covenant)),
            // The fixed resources stay listable in a build without covenants;
            // reading harpoon://covenants reports why there are none.
            Err(e) if e.status() == 503 => {
                tracing::debug!(error = %e, "covenants not listed");
            }
            Err(e) => return Err(protocol_error(&e)),
        }
        // Tenant-scoped: no cache may serve it to anyone else.
        Ok(ListResourcesResult::with_all_items(resources)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
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
        let uri = ResourceUri::parse(&request.uri).ok_or_else(|| {
            ErrorData::resource_not_found(
                format!("no resource has the URI {:?}", request.uri),
                None,
            )
        })?;
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
            Err(PromptError::Backend(e)) => Err(protocol_error(&e)),
            Err(e) => Err(ErrorData::invalid_params(e.to_string(), None)),
        }
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
}

/// The Streamable HTTP endpoint over a backend.
pub type McpHttpService<B> = StreamableHttpService<HarpoonMcp<B>, LocalSessionManager>;

/// The Streamable HTTP service, to mount with `Router::nest_service("/mcp", …)`
/// behind the service's authentication.
pub fn http_service<B: HarpoonBackend>(backend: Arc<B>, options: HttpOptions) -> McpHttpService<B> {
    let mut config = StreamableHttpServerConfig::default()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(options.shutdown);
    if !options.loopback_hosts_only {
        config = config.disable_allowed_hosts();
    }
    let handler = HarpoonMcp::for_http(backend);
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )
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

//! Benchmark reference: the `/health` body served by bare axum with no
//! middleware, so `make bench` can quote what Harpoon's middleware stack costs.
//! Usage: `bare_health PORT`.

use axum::{Json, Router, routing::get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8081);
    let app = Router::new().route(
        "/health",
        get(|| async {
            Json(serde_json::json!({
                "status": "healthy",
                "deployment_modes": [],
                "version": env!("CARGO_PKG_VERSION"),
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await
}

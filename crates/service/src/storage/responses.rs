//! Stored Responses: what `GET /v1/responses/{id}` returns and what
//! `previous_response_id` continues, per tenant.

use super::{Storage, StorageError, now_ms};
use sqlx::Row;

/// One stored response.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    /// The conversation up to and including the response's output, as chat
    /// messages (JSON array).
    pub conversation: String,
    /// The Response object as it was answered (JSON).
    pub body: String,
}

impl Storage {
    /// Stores a response under its tenant; the id is the response's own.
    pub async fn insert_response(
        &self,
        tenant_id: &str,
        id: &str,
        stored: &StoredResponse,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "INSERT INTO responses (id, tenant_id, conversation, body, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(&stored.conversation)
        .bind(&stored.body)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The tenant's response `id`; another tenant's is not found.
    pub async fn response(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<StoredResponse, StorageError> {
        let row = sqlx::query(
            "SELECT conversation, body FROM responses WHERE id = $1 AND tenant_id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or(StorageError::NotFound("response"))?;
        Ok(StoredResponse {
            conversation: row.try_get("conversation")?,
            body: row.try_get("body")?,
        })
    }

    /// Deletes the tenant's response `id`; another tenant's is not found.
    pub async fn delete_response(&self, tenant_id: &str, id: &str) -> Result<(), StorageError> {
        let done = sqlx::query("DELETE FROM responses WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StorageError::NotFound("response"));
        }
        Ok(())
    }
}

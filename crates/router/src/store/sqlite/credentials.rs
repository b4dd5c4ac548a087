//! The credential tables: `users`, `sessions`, `api_keys`, `settings`.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::columns::{i64_of, u64_of};
use crate::store::{ApiKeyRow, Credentials, SessionRow, SpendRow, StoreError, UserRow};

/// `StoreOp::UpsertUser`: inserts or replaces the user (by id), keeping its creation time.
pub(super) async fn upsert_user(
    conn: &mut SqliteConnection,
    u: &UserRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, role, created_ms, updated_ms)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET username = excluded.username,
                 password_hash = excluded.password_hash, role = excluded.role,
                 updated_ms = excluded.updated_ms",
    )
    .bind(&u.id)
    .bind(&u.username)
    .bind(&u.password_hash)
    .bind(&u.role)
    .bind(i64_of(u.created_ms))
    .bind(i64_of(u.updated_ms))
    .execute(conn)
    .await?;
    Ok(())
}

/// `StoreOp::DeleteUser`: its sessions go with it (ON DELETE CASCADE).
pub(super) async fn delete_user(conn: &mut SqliteConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// `StoreOp::InsertSession`.
pub(super) async fn insert_session(
    conn: &mut SqliteConnection,
    s: &SessionRow,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR REPLACE INTO sessions (token_hash, user_id, created_ms, expires_ms)
                 VALUES (?, ?, ?, ?)",
    )
    .bind(&s.token_hash)
    .bind(&s.user_id)
    .bind(i64_of(s.created_ms))
    .bind(i64_of(s.expires_ms))
    .execute(conn)
    .await?;
    Ok(())
}

/// `StoreOp::DeleteSession`: the session with this token hash.
pub(super) async fn delete_session(
    conn: &mut SqliteConnection,
    token_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(token_hash)
        .execute(conn)
        .await?;
    Ok(())
}

/// `StoreOp::DeleteSessionsOf`: every session of a user.
pub(super) async fn delete_sessions_of(
    conn: &mut SqliteConnection,
    user_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE user_id = ?")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// `StoreOp::UpsertApiKey`: inserts or replaces the key (by id); its last use never moves back.
pub(super) async fn upsert_api_key(
    conn: &mut SqliteConnection,
    k: &ApiKeyRow,
) -> Result<(), StoreError> {
    let models = k
        .models
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO api_keys (id, name, key_hash, prefix, models, created_by, created_ms,
                 expires_ms, revoked_ms, last_used_ms, limits)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, models = excluded.models,
                 limits = excluded.limits,
                 expires_ms = excluded.expires_ms, revoked_ms = excluded.revoked_ms,
                 last_used_ms = COALESCE(MAX(api_keys.last_used_ms, excluded.last_used_ms),
                                         api_keys.last_used_ms, excluded.last_used_ms)",
    )
    .bind(&k.id)
    .bind(&k.name)
    .bind(&k.key_hash)
    .bind(&k.prefix)
    .bind(models)
    .bind(&k.created_by)
    .bind(i64_of(k.created_ms))
    .bind(k.expires_ms.map(i64_of))
    .bind(k.revoked_ms.map(i64_of))
    .bind(k.last_used_ms.map(i64_of))
    .bind(&k.limits)
    .execute(conn)
    .await?;
    Ok(())
}

/// `StoreOp::TouchApiKey`: records a use of the key at `at_ms`, unless a later one is known.
pub(super) async fn touch_api_key(
    conn: &mut SqliteConnection,
    id: &str,
    at_ms: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE api_keys SET last_used_ms = MAX(COALESCE(last_used_ms, 0), ?) WHERE id = ?",
    )
    .bind(i64_of(at_ms))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// `StoreOp::SetSetting`.
pub(super) async fn set_setting(
    conn: &mut SqliteConnection,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)")
        .bind(key)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// Every credential row, after deleting the sessions expired at `now_ms`.
pub(super) async fn load(pool: &SqlitePool, now_ms: u64) -> Result<Credentials, StoreError> {
    sqlx::query("DELETE FROM sessions WHERE expires_ms <= ?")
        .bind(i64_of(now_ms))
        .execute(pool)
        .await?;
    let users = sqlx::query("SELECT * FROM users ORDER BY username")
        .fetch_all(pool)
        .await?
        .iter()
        .map(user_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let sessions = sqlx::query("SELECT * FROM sessions")
        .fetch_all(pool)
        .await?
        .iter()
        .map(session_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let api_keys = sqlx::query("SELECT * FROM api_keys ORDER BY created_ms")
        .fetch_all(pool)
        .await?
        .iter()
        .map(api_key_from_row)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let settings = sqlx::query("SELECT key, value FROM settings ORDER BY key")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("key")?, row.try_get("value")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let key_spend = sqlx::query("SELECT key_id, period, tokens FROM key_spend")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(SpendRow {
                key_id: row.try_get("key_id")?,
                period: row.try_get("period")?,
                tokens: u64_of(row.try_get("tokens")?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Credentials {
        users,
        sessions,
        api_keys,
        settings,
        key_spend,
    })
}

fn user_from_row(row: &SqliteRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        role: row.try_get("role")?,
        created_ms: u64_of(row.try_get("created_ms")?),
        updated_ms: u64_of(row.try_get("updated_ms")?),
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        token_hash: row.try_get("token_hash")?,
        user_id: row.try_get("user_id")?,
        created_ms: u64_of(row.try_get("created_ms")?),
        expires_ms: u64_of(row.try_get("expires_ms")?),
    })
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRow, StoreError> {
    let models: Option<String> = row.try_get("models")?;
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        prefix: row.try_get("prefix")?,
        models: models
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("api key models: {e}")))?,
        created_by: row.try_get("created_by")?,
        created_ms: u64_of(row.try_get("created_ms")?),
        expires_ms: row.try_get::<Option<i64>, _>("expires_ms")?.map(u64_of),
        revoked_ms: row.try_get::<Option<i64>, _>("revoked_ms")?.map(u64_of),
        last_used_ms: row.try_get::<Option<i64>, _>("last_used_ms")?.map(u64_of),
        limits: row.try_get("limits")?,
    })
}

/// `StoreOp::AddSpend`: adds to the key's spend in the period.
pub(super) async fn add_spend(
    conn: &mut SqliteConnection,
    key_id: &str,
    period: &str,
    tokens: u64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_spend (key_id, period, tokens) VALUES (?, ?, ?)
         ON CONFLICT (key_id, period) DO UPDATE SET tokens = key_spend.tokens + excluded.tokens",
    )
    .bind(key_id)
    .bind(period)
    .bind(i64_of(tokens))
    .execute(conn)
    .await?;
    Ok(())
}

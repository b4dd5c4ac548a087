//! API keys for inference: created by an admin and shown once, stored as a digest, optionally
//! expiring and limited to some models, revocable.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use llm_router_protocol::Secret;
use serde::{Deserialize, Serialize};

use super::Auth;
use super::AuthError;
use crate::quota::KeyLimits;
use crate::secrets::{API_KEY_PREFIX, Digest, digest, new_token};
use crate::store::{ApiKeyRow, StoreOp, unix_ms};

/// Characters of a key kept in clear to recognise it in a list (`sk-llmr-` and 6 more).
const SHOWN_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 6;
/// A key's last use is written to the store at most this often.
const TOUCH_EVERY_MS: u64 = 60_000;

#[derive(Debug)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// Allowed models; `None` allows every model.
    pub models: Option<Vec<String>>,
    /// Rate, concurrency and budget limits.
    pub limits: KeyLimits,
    pub created_by: Option<String>,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
    /// Last use, 0 = never.
    last_used_ms: AtomicU64,
    /// Last use written to the store.
    stored_used_ms: AtomicU64,
}

/// A key as the API lists it (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub models: Option<Vec<String>>,
    /// Its limits (empty: none).
    pub limits: KeyLimits,
    /// Tokens spent in the current budget period, when the key has a budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spend: Option<Spend>,
    pub created_by: Option<String>,
    pub created_at_ms: u64,
    pub expires_at_ms: Option<u64>,
    pub revoked_at_ms: Option<u64>,
    pub last_used_at_ms: Option<u64>,
    /// `active`, `expired` or `revoked`.
    pub status: &'static str,
    /// The key itself: only in the answer to its creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
}

/// What a key with a budget spent in the current period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spend {
    pub period: String,
    pub tokens: u64,
    pub budget: u64,
}

/// `POST /api/keys` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
    /// Absolute expiry, Unix ms.
    pub expires_at_ms: Option<u64>,
    /// Expiry relative to now, in seconds.
    pub expires_in_secs: Option<u64>,
    /// Models the key may use; absent = all.
    pub models: Option<Vec<String>>,
    /// Rate, concurrency and budget limits; absent = none.
    #[serde(default)]
    pub limits: KeyLimits,
}

impl ApiKey {
    /// `Err(reason)` when the key is revoked or expired at `now_ms`.
    pub fn usable_at(&self, now_ms: u64) -> Result<(), &'static str> {
        if self.revoked_ms.is_some() {
            return Err("the key was revoked");
        }
        if self.expires_ms.is_some_and(|at| at <= now_ms) {
            return Err("the key has expired");
        }
        Ok(())
    }

    pub fn permits(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|m| m == model))
    }

    /// Records a use at `now_ms`; true when it is time to write it to the store.
    pub(super) fn touch(&self, now_ms: u64) -> bool {
        self.last_used_ms.fetch_max(now_ms, Ordering::Relaxed);
        let stored = self.stored_used_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(stored) >= TOUCH_EVERY_MS
            && self
                .stored_used_ms
                .compare_exchange(stored, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    fn last_used(&self) -> Option<u64> {
        Some(self.last_used_ms.load(Ordering::Relaxed)).filter(|&ms| ms > 0)
    }

    pub fn view(&self, now_ms: u64) -> ApiKeyView {
        ApiKeyView {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            models: self.models.clone(),
            limits: self.limits,
            spend: None,
            created_by: self.created_by.clone(),
            created_at_ms: self.created_ms,
            expires_at_ms: self.expires_ms,
            revoked_at_ms: self.revoked_ms,
            last_used_at_ms: self.last_used(),
            status: match self.usable_at(now_ms) {
                Ok(()) => "active",
                Err(_) if self.revoked_ms.is_some() => "revoked",
                Err(_) => "expired",
            },
            key: None,
        }
    }

    fn row(&self, key_hash: &Digest) -> ApiKeyRow {
        ApiKeyRow {
            id: self.id.clone(),
            name: self.name.clone(),
            key_hash: hex::encode(key_hash),
            prefix: self.prefix.clone(),
            models: self.models.clone(),
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            revoked_ms: self.revoked_ms,
            last_used_ms: self.last_used(),
            limits: (!self.limits.is_empty())
                .then(|| serde_json::to_string(&self.limits).ok())
                .flatten(),
        }
    }

    fn revoked(&self, at_ms: u64) -> ApiKey {
        let used = self.last_used_ms.load(Ordering::Relaxed);
        ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            models: self.models.clone(),
            limits: self.limits,
            created_by: self.created_by.clone(),
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            revoked_ms: Some(at_ms),
            last_used_ms: AtomicU64::new(used),
            stored_used_ms: AtomicU64::new(used),
        }
    }
}

impl ApiKey {
    /// A stored key and the digest it is found by.
    pub(super) fn from_row(row: ApiKeyRow) -> Result<(Digest, ApiKey), String> {
        let mut d: Digest = [0; 32];
        hex::decode_to_slice(&row.key_hash, &mut d)
            .map_err(|e| format!("API key '{}' has a bad hash: {e}", row.id))?;
        let used = row.last_used_ms.unwrap_or(0);
        let limits = match &row.limits {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| format!("API key '{}' has bad limits: {e}", row.id))?,
            None => KeyLimits::default(),
        };
        Ok((
            d,
            ApiKey {
                id: row.id,
                name: row.name,
                prefix: row.prefix,
                models: row.models,
                limits,
                created_by: row.created_by,
                created_ms: row.created_ms,
                expires_ms: row.expires_ms,
                revoked_ms: row.revoked_ms,
                last_used_ms: AtomicU64::new(used),
                stored_used_ms: AtomicU64::new(used),
            },
        ))
    }
}

impl Auth {
    /// Every key, oldest first.
    pub fn api_keys(&self) -> Vec<ApiKeyView> {
        let now_ms = unix_ms(SystemTime::now());
        let mut keys: Vec<ApiKeyView> = self.keys.load().values().map(|k| k.view(now_ms)).collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Creates a key; the answer is the only place the key ever appears.
    pub async fn create_api_key(
        &self,
        new: NewApiKey,
        created_by: &str,
    ) -> Result<ApiKeyView, AuthError> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.len() > 128 {
            return Err(AuthError::Invalid(
                "'name' must have 1 to 128 characters".to_owned(),
            ));
        }
        let now_ms = unix_ms(SystemTime::now());
        let expires_ms = match (new.expires_at_ms, new.expires_in_secs) {
            (Some(_), Some(_)) => {
                return Err(AuthError::Invalid(
                    "give 'expires_at_ms' or 'expires_in_secs', not both".to_owned(),
                ));
            }
            (Some(at), None) => Some(at),
            (None, Some(secs)) => Some(now_ms.saturating_add(secs.saturating_mul(1000))),
            (None, None) => None,
        };
        if expires_ms.is_some_and(|at| at <= now_ms) {
            return Err(AuthError::Invalid("the expiry is in the past".to_owned()));
        }
        let models = match new.models {
            Some(models) if models.iter().any(|m| m.trim().is_empty()) => {
                return Err(AuthError::Invalid(
                    "'models' must not contain empty names".to_owned(),
                ));
            }
            Some(models) if models.is_empty() => {
                return Err(AuthError::Invalid(
                    "'models' must list at least one model (leave it out to allow all)".to_owned(),
                ));
            }
            other => other,
        };
        new.limits.validate().map_err(AuthError::Invalid)?;
        let secret = new_token(API_KEY_PREFIX);
        let d = digest(&secret);
        let key = ApiKey {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            prefix: secret.chars().take(SHOWN_PREFIX_LEN).collect(),
            models,
            limits: new.limits,
            created_by: Some(created_by.to_owned()),
            created_ms: now_ms,
            expires_ms,
            revoked_ms: None,
            last_used_ms: AtomicU64::new(0),
            stored_used_ms: AtomicU64::new(0),
        };
        let _change = self.changes.lock().await;
        self.store
            .apply(&[StoreOp::UpsertApiKey(Box::new(key.row(&d)))])
            .await?;
        tracing::info!(id = %key.id, name = %key.name, prefix = %key.prefix, "API key created");
        let mut view = key.view(now_ms);
        view.key = Some(Secret::new(secret));
        self.replace_key(d, key);
        Ok(view)
    }

    /// Revokes a key: it is refused from now on and stays listed as `revoked`.
    pub async fn revoke_api_key(&self, id: &str) -> Result<ApiKeyView, AuthError> {
        let _change = self.changes.lock().await;
        let (d, key) = self
            .keys
            .load()
            .iter()
            .find(|(_, k)| k.id == id)
            .map(|(d, k)| (*d, Arc::clone(k)))
            .ok_or_else(|| AuthError::ApiKeyNotFound(id.to_owned()))?;
        let now_ms = unix_ms(SystemTime::now());
        let revoked = key
            .revoked_ms
            .map_or_else(|| key.revoked(now_ms), |at| key.revoked(at));
        self.store
            .apply(&[StoreOp::UpsertApiKey(Box::new(revoked.row(&d)))])
            .await?;
        tracing::info!(id = %revoked.id, name = %revoked.name, "API key revoked");
        let view = revoked.view(now_ms);
        self.replace_key(d, revoked);
        Ok(view)
    }

    fn replace_key(&self, d: Digest, key: ApiKey) {
        let mut keys: HashMap<Digest, Arc<ApiKey>> = (**self.keys.load()).clone();
        keys.insert(d, Arc::new(key));
        self.keys.store(Arc::new(keys));
    }
}

//! Model aliases and fallbacks: the names clients use, and what the router serves them with.
//!
//! - An **alias** maps a public name to a model the fleet serves (`gpt-4o-mini` → `gemma3-270m`,
//!   `coder` → `qwen3-coder:30b`). It targets a model, never another alias, so resolving is one
//!   lookup.
//! - A model's **fallbacks** are tried in order when no node has the model ready right now (none
//!   at all, all offline, or still loading). The choice is made before the request leaves the
//!   router, so a fallback is never taken after the first byte of an answer.
//!
//! Two layers: the configuration's (`--model-aliases`, `--model-fallbacks`, or the TOML tables),
//! read-only, and the admin API's, persisted in the store's settings so a restart keeps them. An
//! entry of the API overrides the configuration's of the same name.

mod table;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use serde::Serialize;

pub use table::{AliasError, ModelAliases, ModelFallbacks, ModelTable};

use crate::store::{Store, StoreError, StoreOp};

/// The store setting holding the admin API's table, as JSON.
pub const SETTING: &str = "model_aliases";

/// How a requested name became the model that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The model that serves the request.
    pub model: String,
    /// Why `model` differs from the name requested, if it does.
    pub via: Option<Via>,
}

/// Why a request is served by another model than the one it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Alias,
    Fallback,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Alias => "alias",
            Via::Fallback => "fallback",
        }
    }
}

/// One row of `GET /api/aliases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasView {
    pub name: String,
    pub model: String,
    /// `config` (read-only) or `api`.
    pub source: &'static str,
}

/// One row of `GET /api/aliases` for fallbacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FallbackView {
    pub model: String,
    pub fallbacks: Vec<String>,
    pub source: &'static str,
}

/// The aliases and fallbacks in force.
pub struct ModelMap {
    config: ModelTable,
    /// The admin API's layer, persisted.
    api: RwLock<Arc<ModelTable>>,
    /// Held across a change (read, store, put in force), so concurrent changes do not lose one.
    changes: tokio::sync::Mutex<()>,
    store: Arc<dyn Store>,
}

impl ModelMap {
    /// The configuration's table, with the admin API's table as last stored (`settings` from the
    /// store; a stored table that does not parse is logged and ignored).
    pub fn new(config: ModelTable, store: Arc<dyn Store>, settings: &[(String, String)]) -> Self {
        let stored = settings
            .iter()
            .rev()
            .find(|(k, _)| k == SETTING)
            .and_then(|(_, v)| match serde_json::from_str::<ModelTable>(v) {
                Ok(table) => Some(table),
                Err(e) => {
                    tracing::warn!(error = %e, "the stored model aliases do not parse; ignored");
                    None
                }
            })
            .unwrap_or_default();
        ModelMap {
            config,
            api: RwLock::new(Arc::new(stored)),
            changes: tokio::sync::Mutex::new(()),
            store,
        }
    }

    fn api(&self) -> Arc<ModelTable> {
        Arc::clone(&self.api.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The model an alias names (the API's entry first).
    pub fn alias(&self, name: &str) -> Option<String> {
        let api = self.api();
        api.aliases
            .get(name)
            .or_else(|| self.config.aliases.get(name))
            .cloned()
    }

    fn fallbacks(&self, model: &str) -> Vec<String> {
        let api = self.api();
        api.fallbacks
            .get(model)
            .or_else(|| self.config.fallbacks.get(model))
            .cloned()
            .unwrap_or_default()
    }

    /// What serves a request for `requested`: its alias's target, or the first of that model's
    /// fallbacks that `usable` (ready now, and allowed to the caller) when the model itself is
    /// not; the model itself when no fallback is usable either (it may become ready while the
    /// request waits, or fail as it would without fallbacks).
    pub fn resolve(&self, requested: &str, usable: impl Fn(&str) -> bool) -> Resolved {
        let target = self.alias(requested);
        let model = target.clone().unwrap_or_else(|| requested.to_owned());
        if !usable(&model) {
            let fallback = self
                .fallbacks(&model)
                .into_iter()
                .map(|f| self.alias(&f).unwrap_or(f))
                .find(|f| *f != model && usable(f));
            if let Some(fallback) = fallback {
                return Resolved {
                    model: fallback,
                    via: Some(Via::Fallback),
                };
            }
        }
        Resolved {
            via: target.is_some().then_some(Via::Alias),
            model,
        }
    }

    /// Every alias in force, by name, with where it comes from.
    pub fn aliases(&self) -> Vec<AliasView> {
        let api = self.api();
        let mut all: BTreeMap<&str, AliasView> = BTreeMap::new();
        for (source, table) in [("config", &self.config), ("api", &*api)] {
            for (name, model) in &table.aliases {
                all.insert(
                    name,
                    AliasView {
                        name: name.clone(),
                        model: model.clone(),
                        source,
                    },
                );
            }
        }
        all.into_values().collect()
    }

    /// Every fallback list in force, by model.
    pub fn fallback_lists(&self) -> Vec<FallbackView> {
        let api = self.api();
        let mut all: BTreeMap<&str, FallbackView> = BTreeMap::new();
        for (source, table) in [("config", &self.config), ("api", &*api)] {
            for (model, fallbacks) in &table.fallbacks {
                all.insert(
                    model,
                    FallbackView {
                        model: model.clone(),
                        fallbacks: fallbacks.clone(),
                        source,
                    },
                );
            }
        }
        all.into_values().collect()
    }

    /// Sets (or replaces) the API's alias `name` → `model`, stored before it is in force.
    pub async fn set_alias(&self, name: &str, model: &str) -> Result<(), AliasError> {
        self.change(|table| table.set_alias(name, model, &self.config))
            .await
    }

    /// Removes the API's alias `name`.
    pub async fn remove_alias(&self, name: &str) -> Result<(), AliasError> {
        self.change(|table| table.remove_alias(name, &self.config))
            .await
    }

    /// Sets (or replaces) the API's fallback list of `model`.
    pub async fn set_fallbacks(&self, model: &str, fallbacks: &[String]) -> Result<(), AliasError> {
        self.change(|table| table.set_fallbacks(model, fallbacks))
            .await
    }

    /// Removes the API's fallback list of `model`.
    pub async fn remove_fallbacks(&self, model: &str) -> Result<(), AliasError> {
        self.change(|table| table.remove_fallbacks(model, &self.config))
            .await
    }

    /// Applies `edit` to a copy of the API's table, stores it, then puts it in force. Changes
    /// are rare (an admin's) and serialized; requests keep reading the table in force meanwhile.
    async fn change(
        &self,
        edit: impl FnOnce(&mut ModelTable) -> Result<(), AliasError>,
    ) -> Result<(), AliasError> {
        let _one_at_a_time = self.changes.lock().await;
        let mut table = (*self.api()).clone();
        edit(&mut table)?;
        let value = serde_json::to_string(&table)
            .map_err(|e| AliasError::Store(StoreError::Corrupt(e.to_string())))?;
        self.store
            .apply(&[StoreOp::SetSetting {
                key: SETTING.to_owned(),
                value,
            }])
            .await
            .map_err(AliasError::Store)?;
        *self.api.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
        Ok(())
    }
}

impl std::fmt::Debug for ModelMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelMap")
            .field("config", &self.config)
            .field("api", &self.api())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;

//! The alias and fallback tables, their checks, and how the configuration writes them
//! (`--model-aliases "gpt-4o-mini=gemma3-270m,coder=qwen3-coder:30b"`,
//! `--model-fallbacks "qwen3-coder:30b=gemma3-270m|gpt-oss:20b"`, or TOML tables
//! `[model_aliases]` `"gpt-4o-mini" = "gemma3-270m"` and `[model_fallbacks]`
//! `"qwen3-coder:30b" = ["gemma3-270m"]`).

use std::collections::BTreeMap;
use std::str::FromStr;

use llm_router_common::text::MAX_NAME;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Aliases at most, per layer.
pub const MAX_ALIASES: usize = 1024;
/// Fallbacks at most, per model.
pub const MAX_FALLBACKS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("'{0}' is set in the router's configuration; change it there")]
    FromConfig(String),
    #[error("no such entry: '{0}'")]
    NotFound(String),
    #[error("the change could not be stored: {0}")]
    Store(StoreError),
}

/// Aliases (name → model) and fallbacks (model → models, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTable {
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub fallbacks: BTreeMap<String, Vec<String>>,
}

/// A model or alias name: not empty, at most [`MAX_NAME`] bytes, no control characters, none of
/// the configuration's separators.
pub fn check_name(name: &str) -> Result<(), AliasError> {
    if name.trim().is_empty() || name.trim() != name {
        return Err(AliasError::Invalid(
            "a name must not be empty nor start or end with spaces".into(),
        ));
    }
    if name.len() > MAX_NAME {
        return Err(AliasError::Invalid(format!(
            "a name has at most {MAX_NAME} bytes"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, ',' | '=' | '|'))
    {
        return Err(AliasError::Invalid(
            "a name has no control characters and none of , = |".into(),
        ));
    }
    Ok(())
}

impl ModelTable {
    /// Sets `name` → `model`; `config` is the other layer, whose aliases count too: an alias
    /// targets a model, never an alias, and is never the target of one.
    pub fn set_alias(
        &mut self,
        name: &str,
        model: &str,
        config: &ModelTable,
    ) -> Result<(), AliasError> {
        check_name(name)?;
        check_name(model)?;
        if name == model {
            return Err(AliasError::Invalid("an alias cannot name itself".into()));
        }
        let is_alias = |n: &str| self.aliases.contains_key(n) || config.aliases.contains_key(n);
        if is_alias(model) {
            return Err(AliasError::Invalid(format!(
                "'{model}' is an alias itself: point '{name}' at the model it names"
            )));
        }
        let targeted = self
            .aliases
            .values()
            .chain(config.aliases.values())
            .any(|m| m == name);
        if targeted {
            return Err(AliasError::Invalid(format!(
                "'{name}' is the model of another alias"
            )));
        }
        if !self.aliases.contains_key(name) && self.aliases.len() >= MAX_ALIASES {
            return Err(AliasError::Invalid(format!(
                "at most {MAX_ALIASES} aliases"
            )));
        }
        self.aliases.insert(name.to_owned(), model.to_owned());
        Ok(())
    }

    pub fn remove_alias(&mut self, name: &str, config: &ModelTable) -> Result<(), AliasError> {
        match self.aliases.remove(name) {
            Some(_) => Ok(()),
            None if config.aliases.contains_key(name) => {
                Err(AliasError::FromConfig(name.to_owned()))
            }
            None => Err(AliasError::NotFound(name.to_owned())),
        }
    }

    /// Sets the fallbacks of `model`: at most [`MAX_FALLBACKS`], distinct, not `model` itself.
    pub fn set_fallbacks(&mut self, model: &str, fallbacks: &[String]) -> Result<(), AliasError> {
        check_name(model)?;
        if fallbacks.is_empty() || fallbacks.len() > MAX_FALLBACKS {
            return Err(AliasError::Invalid(format!(
                "a model has 1 to {MAX_FALLBACKS} fallbacks"
            )));
        }
        for (i, f) in fallbacks.iter().enumerate() {
            check_name(f)?;
            if f == model || fallbacks[..i].contains(f) {
                return Err(AliasError::Invalid(format!(
                    "'{f}' is the model itself or listed twice"
                )));
            }
        }
        if !self.fallbacks.contains_key(model) && self.fallbacks.len() >= MAX_ALIASES {
            return Err(AliasError::Invalid(format!(
                "at most {MAX_ALIASES} fallback lists"
            )));
        }
        self.fallbacks.insert(model.to_owned(), fallbacks.to_vec());
        Ok(())
    }

    pub fn remove_fallbacks(&mut self, model: &str, config: &ModelTable) -> Result<(), AliasError> {
        match self.fallbacks.remove(model) {
            Some(_) => Ok(()),
            None if config.fallbacks.contains_key(model) => {
                Err(AliasError::FromConfig(model.to_owned()))
            }
            None => Err(AliasError::NotFound(model.to_owned())),
        }
    }

    /// The configuration's table from its two settings, checked like the API's.
    pub fn from_settings(
        aliases: Option<ModelAliases>,
        fallbacks: Option<ModelFallbacks>,
    ) -> Result<ModelTable, AliasError> {
        let mut table = ModelTable::default();
        let none = ModelTable::default();
        for (name, model) in aliases.map(|a| a.0).unwrap_or_default() {
            table.set_alias(&name, &model, &none)?;
        }
        for (model, list) in fallbacks.map(|f| f.0).unwrap_or_default() {
            table.set_fallbacks(&model, &list)?;
        }
        Ok(table)
    }
}

/// `--model-aliases`: `NAME=MODEL[,NAME=MODEL...]`, or a TOML table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ModelAliases(pub BTreeMap<String, String>);

/// `--model-fallbacks`: `MODEL=F1|F2[,MODEL=F3...]`, or a TOML table of lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ModelFallbacks(pub BTreeMap<String, Vec<String>>);

fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("'{p}' is not NAME=VALUE"))
        })
        .collect()
}

impl FromStr for ModelAliases {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ModelAliases(pairs(s)?.into_iter().collect()))
    }
}

impl FromStr for ModelFallbacks {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ModelFallbacks(
            pairs(s)?
                .into_iter()
                .map(|(model, list)| {
                    let list = list.split('|').map(|f| f.trim().to_owned()).collect();
                    (model, list)
                })
                .collect(),
        ))
    }
}

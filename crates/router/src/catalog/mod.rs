//! The model catalog: which models the fleet runs, where nodes fetch them, how they start them,
//! and which of them a node gets for the memory it can serve from ([`Placement`]).
//!
//! The built-in catalog (`default.toml`, compiled in) holds the seeds' models and a small CPU
//! model. A catalog file given by the user is applied on top: its entries replace built-in ones
//! of the same name (in place) or are added after them, and its `[placement]`, when present,
//! replaces the built-in tiers as a whole. Each file is checked on its own, and a refused file is
//! named in the error.

mod entry;
mod error;
mod placement;
mod serving_memory;

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use entry::CatalogEntry;
#[cfg(test)]
use entry::GgufPart;
pub use error::{CatalogError, Problem};
pub use placement::Placement;
#[cfg(test)]
use placement::{Choice, CpuTier, Tier};

use placement::PlacementFile;

const BUILTIN: &str = include_str!("default.toml");
const BUILTIN_ORIGIN: &str = "built-in catalog";

/// The validated catalog: unique model names, valid sources, valid placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    placement: Placement,
}

/// A catalog file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    models: Vec<CatalogEntry>,
    #[serde(default)]
    placement: Option<PlacementFile>,
}

impl Catalog {
    /// The catalog compiled into the router.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        let (entries, placement) = read_file(BUILTIN, BUILTIN_ORIGIN)?;
        let placement = placement.ok_or_else(|| invalid(BUILTIN_ORIGIN, Problem::NoPlacement))?;
        Ok(Catalog { entries, placement })
    }

    /// The built-in catalog with `user_file`, when given, applied on top.
    pub fn load(user_file: Option<&Path>) -> Result<Catalog, CatalogError> {
        let catalog = Catalog::builtin()?;
        let Some(path) = user_file else {
            return Ok(catalog);
        };
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        catalog.with_file(&text, &path.display().to_string())
    }

    /// This catalog with a catalog file's `text` applied on top; `origin` names the file in
    /// errors.
    pub fn with_file(mut self, text: &str, origin: &str) -> Result<Catalog, CatalogError> {
        let (entries, placement) = read_file(text, origin)?;
        for entry in entries {
            match self.entries.iter_mut().find(|e| e.name == entry.name) {
                Some(existing) => *existing = entry,
                None => self.entries.push(entry),
            }
        }
        if let Some(placement) = placement {
            self.placement = placement;
        }
        Ok(self)
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// All entries: the built-in ones first (replaced in place), then those a file added.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// Model names the placement tiers give that the catalog lacks (skipped when choosing), each
    /// once; worth a warning at start-up.
    pub fn unknown_tier_models(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.placement
            .models()
            .map(String::as_str)
            .filter(|name| self.get(name).is_none() && seen.insert(*name))
            .collect()
    }
}

/// Parses and checks one catalog file on its own.
fn read_file(
    text: &str,
    origin: &str,
) -> Result<(Vec<CatalogEntry>, Option<Placement>), CatalogError> {
    let file: CatalogFile = toml::from_str(text).map_err(|source| CatalogError::Parse {
        origin: origin.to_owned(),
        source: Box::new(source),
    })?;
    let mut names = HashSet::new();
    let mut entries = Vec::with_capacity(file.models.len());
    for (index, entry) in file.models.into_iter().enumerate() {
        let entry = entry.checked(index).map_err(|p| invalid(origin, p))?;
        if !names.insert(entry.name.clone()) {
            return Err(invalid(
                origin,
                Problem::DuplicateName {
                    name: entry.name.clone(),
                },
            ));
        }
        entries.push(entry);
    }
    let placement = file
        .placement
        .map(|p| Placement::new(p.tiers, p.cpu_tiers))
        .transpose()
        .map_err(|p| invalid(origin, p))?;
    Ok((entries, placement))
}

fn invalid(origin: &str, problem: Problem) -> CatalogError {
    CatalogError::Invalid {
        origin: origin.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod placement_tests;
#[cfg(test)]
mod tests;

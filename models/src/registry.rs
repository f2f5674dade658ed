//! The model registry: versioned model artefacts in the lake, and which version is live.
//!
//! Layout under the lake root:
//!
//! ```text
//! models/registry/<name>/<name>-v<N>/card.json     what the model is (see ModelCard)
//! models/registry/<name>/<name>-v<N>/model.json    the model itself
//! models/registry/<name>/<name>-v<N>/metrics.json  its evaluation report
//! models/registry/promoted.json                    {"sell": "sell-v3", …}
//! ```
//!
//! A version directory is written under a hidden name and renamed into place, and
//! `promoted.json` is replaced by rename, so a reader never sees half an artefact. The
//! stream and the API load the promoted version of each model; a model trained on another
//! version of the feature catalog is refused, never silently misread.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::propensity::PropensityModel;
use crate::{Error, Result};

/// The data a model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingData {
    /// Table the rows came from (`features.alert_training`).
    pub table: String,
    /// Rows used (all parts of the split).
    pub rows: usize,
    /// Positive rows.
    pub positives: usize,
    /// Content fingerprint of the rows.
    pub fingerprint: String,
    /// Last snapshot date in the data.
    pub as_of: Option<String>,
}

/// What a registered model is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// `<name>-v<version>`.
    pub id: String,
    /// Model name: `sell`, `buy`, `refinance`, `investment`.
    pub name: String,
    /// Version, from 1, per name.
    pub version: u32,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// Version of the feature catalog its features come from.
    pub catalog_version: String,
    /// Feature names, in the order the model reads them.
    pub features: Vec<String>,
    /// Training data.
    pub training: TrainingData,
    /// One line of headline numbers for listings.
    pub summary: String,
}

/// A model to register.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    /// Model name.
    pub name: &'a str,
    /// RFC 3339 time of registration.
    pub created_at: String,
    /// Feature catalog version.
    pub catalog_version: &'a str,
    /// Feature names.
    pub features: Vec<String>,
    /// Training data.
    pub training: TrainingData,
    /// Headline numbers.
    pub summary: String,
    /// `model.json`.
    pub model_json: String,
    /// `metrics.json`.
    pub metrics_json: String,
}

/// A registered model as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Its card.
    pub card: ModelCard,
    /// Whether it is the promoted version of its name.
    pub promoted: bool,
}

/// The registry of one lake.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let message = format!("{what} {}", path.display());
    move |e| Error::Registry(format!("{message}: {e}"))
}

/// Checks that `id` is `<name>-v<N>` (and so cannot name a path outside the registry).
fn parse_id(id: &str) -> Result<(&str, u32)> {
    let bad = || {
        Error::Registry(format!(
            "{id:?} is not a model id; ids look like sell-v3 (see roi models list)"
        ))
    };
    let (name, version) = id.rsplit_once("-v").ok_or_else(bad)?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(bad());
    }
    let version: u32 = version.parse().map_err(|_| bad())?;
    Ok((name, version))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, bytes).map_err(io("writing", &tmp))?;
    fs::rename(&tmp, path).map_err(io("replacing", path))
}

impl Registry {
    /// The registry under `lake` (created on first write).
    pub fn at(lake: &Path) -> Registry {
        Registry {
            root: lake.join("models").join("registry"),
        }
    }

    /// Directory of the registry.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn versions(&self, name: &str) -> Result<Vec<u32>> {
        let dir = self.root.join(name);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("listing", &dir))? {
            let entry = entry.map_err(io("listing", &dir))?;
            let file = entry.file_name();
            if let Ok((n, v)) = parse_id(&file.to_string_lossy())
                && n == name
                && entry.path().join("card.json").is_file()
            {
                out.push(v);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Registers a new version of `model.name` and returns its card.
    pub fn register(&self, model: NewModel<'_>) -> Result<ModelCard> {
        if parse_id(&format!("{}-v1", model.name)).is_err() {
            return Err(Error::Registry(format!(
                "{:?} is not a model name (lowercase letters and dashes)",
                model.name
            )));
        }
        let dir = self.root.join(model.name);
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let version = self.versions(model.name)?.last().map_or(1, |v| v + 1);
        let id = format!("{}-v{version}", model.name);
        let card = ModelCard {
            id: id.clone(),
            name: model.name.to_owned(),
            version,
            created_at: model.created_at,
            catalog_version: model.catalog_version.to_owned(),
            features: model.features,
            training: model.training,
            summary: model.summary,
        };
        let staging = dir.join(format!(".{id}.staging-{}", std::process::id()));
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("clearing", &staging))?;
        }
        fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
        let card_json =
            serde_json::to_vec_pretty(&card).map_err(|e| Error::Registry(e.to_string()))?;
        for (file, bytes) in [
            ("model.json", model.model_json.as_bytes()),
            ("metrics.json", model.metrics_json.as_bytes()),
            ("card.json", card_json.as_slice()),
        ] {
            let path = staging.join(file);
            fs::write(&path, bytes).map_err(io("writing", &path))?;
        }
        let target = dir.join(&id);
        fs::rename(&staging, &target).map_err(io("publishing", &target))?;
        Ok(card)
    }

    fn promoted_map(&self) -> Result<BTreeMap<String, String>> {
        let path = self.root.join("promoted.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Registry(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    fn dir_of(&self, id: &str) -> Result<PathBuf> {
        let (name, _) = parse_id(id)?;
        let dir = self.root.join(name).join(id);
        if !dir.join("card.json").is_file() {
            return Err(Error::Registry(format!(
                "no model {id} in the registry at {} (see roi models list)",
                self.root.display()
            )));
        }
        Ok(dir)
    }

    /// The card of model `id`.
    pub fn card(&self, id: &str) -> Result<ModelCard> {
        let path = self.dir_of(id)?.join("card.json");
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))
    }

    /// The evaluation report of model `id`, as written at training.
    pub fn metrics(&self, id: &str) -> Result<serde_json::Value> {
        let path = self.dir_of(id)?.join("metrics.json");
        let bytes = fs::read(&path).map_err(io("reading", &path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Registry(format!("{}: {e}", path.display())))
    }

    /// Every registered model, by name then version.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let promoted = self.promoted_map()?;
        let mut names = Vec::new();
        if self.root.is_dir() {
            for entry in fs::read_dir(&self.root).map_err(io("listing", &self.root))? {
                let entry = entry.map_err(io("listing", &self.root))?;
                if entry.path().is_dir() {
                    names.push(entry.file_name().to_string_lossy().into_owned());
                }
            }
        }
        names.sort();
        let mut out = Vec::new();
        for name in names {
            for v in self.versions(&name)? {
                let card = self.card(&format!("{name}-v{v}"))?;
                let promoted = promoted.get(&name) == Some(&card.id);
                out.push(Listed { card, promoted });
            }
        }
        Ok(out)
    }

    /// Makes `id` the live version of its name; returns the version it replaced.
    pub fn promote(&self, id: &str) -> Result<Option<String>> {
        let card = self.card(id)?;
        let mut map = self.promoted_map()?;
        let previous = map.insert(card.name.clone(), card.id.clone());
        let bytes = serde_json::to_vec_pretty(&map).map_err(|e| Error::Registry(e.to_string()))?;
        write_atomically(&self.root.join("promoted.json"), &bytes)?;
        Ok(previous)
    }

    /// The promoted version of `name`, if any.
    pub fn promoted(&self, name: &str) -> Result<Option<ModelCard>> {
        self.promoted_map()?
            .get(name)
            .map(|id| self.card(id))
            .transpose()
    }

    /// Loads propensity model `id`, refusing one trained on another feature catalog.
    pub fn load_propensity(
        &self,
        id: &str,
        catalog_version: &str,
    ) -> Result<(ModelCard, PropensityModel)> {
        let card = self.card(id)?;
        if card.catalog_version != catalog_version {
            return Err(Error::Registry(format!(
                "model {id} was trained on feature catalog {} but this build computes {catalog_version}; \
                 retrain it (roi train alerts --model {}) and promote the new version",
                card.catalog_version, card.name
            )));
        }
        let path = self.dir_of(id)?.join("model.json");
        let text = fs::read_to_string(&path).map_err(io("reading", &path))?;
        let model = PropensityModel::from_json(&text)?;
        if model.features != card.features {
            return Err(Error::Registry(format!(
                "model {id}: model.json and card.json list different features"
            )));
        }
        Ok((card, model))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn new_model<'a>(name: &'a str, catalog: &'a str) -> NewModel<'a> {
        NewModel {
            name,
            created_at: "2026-01-01T00:00:00Z".into(),
            catalog_version: catalog,
            features: vec!["a".into()],
            training: TrainingData {
                table: "features.alert_training".into(),
                rows: 10,
                positives: 2,
                fingerprint: "00".into(),
                as_of: None,
            },
            summary: "auc 0.7".into(),
            model_json: "{}".into(),
            metrics_json: "{\"auc\":0.7}".into(),
        }
    }

    #[test]
    fn versions_promotion_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::at(dir.path());
        assert!(reg.list().unwrap().is_empty());
        assert_eq!(reg.register(new_model("sell", "c1")).unwrap().id, "sell-v1");
        assert_eq!(reg.register(new_model("sell", "c1")).unwrap().id, "sell-v2");
        assert_eq!(reg.register(new_model("buy", "c1")).unwrap().id, "buy-v1");
        assert_eq!(reg.promoted("sell").unwrap(), None);
        assert_eq!(reg.promote("sell-v1").unwrap(), None);
        assert_eq!(reg.promote("sell-v2").unwrap().as_deref(), Some("sell-v1"));
        assert_eq!(reg.promoted("sell").unwrap().unwrap().id, "sell-v2");
        let listed: Vec<(String, bool)> = reg
            .list()
            .unwrap()
            .into_iter()
            .map(|l| (l.card.id, l.promoted))
            .collect();
        assert_eq!(
            listed,
            [
                ("buy-v1".to_owned(), false),
                ("sell-v1".to_owned(), false),
                ("sell-v2".to_owned(), true)
            ]
        );
        assert_eq!(reg.metrics("buy-v1").unwrap()["auc"], 0.7);
    }

    #[test]
    fn bad_ids_and_other_catalogs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::at(dir.path());
        reg.register(new_model("sell", "features-v0")).unwrap();
        for bad in ["../etc", "sell", "sell-vx", "Sell-v1"] {
            let err = reg.card(bad).unwrap_err().to_string();
            assert!(err.contains("not a model id"), "{bad}: {err}");
        }
        let err = reg.promote("sell-v9").unwrap_err().to_string();
        assert!(err.contains("no model sell-v9"), "{err}");
        let err = reg
            .load_propensity("sell-v1", "features-v1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("features-v0") && err.contains("retrain"),
            "{err}"
        );
    }
}

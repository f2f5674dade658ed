//! Effective configuration: defaults, then `roi.toml`, then `ROI_*` environment variables,
//! then command-line options.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use roi_datasets::Scale;
use roi_serving::config::{DatabaseConfig, ServeConfig};
use roi_serving::store::mask_password as mask_url;
use serde::{Deserialize, Serialize};

/// The whole configuration. Every key is optional in `roi.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Holds `lake/` and, later, the SQLite store.
    pub data_dir: PathBuf,
    /// Lake root (a local directory); defaults to `<data_dir>/lake`.
    pub lake: Option<String>,
    /// Defaults for generated worlds.
    pub datasets: DatasetsConfig,
    /// The relational store (`roi serve`, `roi db migrate`).
    pub database: DatabaseConfig,
    /// The HTTP server.
    pub serve: ServeConfig,
}

/// `[datasets]`: defaults for `roi datasets generate` and `roi demo`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatasetsConfig {
    /// World size.
    pub scale: Scale,
    /// Seed.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            lake: None,
            datasets: DatasetsConfig::default(),
            database: DatabaseConfig::default(),
            serve: ServeConfig::default(),
        }
    }
}

impl Default for DatasetsConfig {
    fn default() -> Self {
        DatasetsConfig {
            scale: Scale::Small,
            seed: 7,
        }
    }
}

/// Where a configuration came from, for `roi config show`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Environment variables applied.
    pub env: Vec<String>,
}

impl Config {
    /// Loads `file` (or `./roi.toml` when present) and applies `ROI_*` variables from `env`.
    ///
    /// Nested keys use a double underscore: `ROI_DATASETS__SEED=11`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Sources)> {
        let mut sources = Sources::default();
        let mut value = toml::Table::new();
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("roi.toml")).filter(|p| p.is_file()),
        };
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            value = text
                .parse::<toml::Table>()
                .with_context(|| format!("parsing config file {}", path.display()))?;
            sources.file = Some(path);
        }
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("ROI_"))
            .collect();
        vars.sort();
        for (key, raw) in vars {
            let path: Vec<String> = key["ROI_".len()..]
                .split("__")
                .map(str::to_lowercase)
                .collect();
            if path.iter().any(String::is_empty) {
                bail!("environment variable {key}: malformed key (use ROI_SECTION__KEY)");
            }
            let parsed = format!("v = {raw}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.clone()));
            let mut table = &mut value;
            for part in &path[..path.len() - 1] {
                let entry = table
                    .entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                table = entry.as_table_mut().with_context(|| {
                    format!("environment variable {key}: {part} is not a section")
                })?;
            }
            table.insert(path[path.len() - 1].clone(), parsed);
            sources.env.push(key);
        }
        // Over the defaults, so that a partial nested table (one field of a rate-limit
        // policy, say) keeps the defaults of its other fields.
        let mut merged = toml::Table::try_from(Config::default())
            .context("bug: the default configuration does not serialise")?;
        merge(&mut merged, value);
        let config: Config = toml::Value::Table(merged)
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("invalid configuration: {}", e.message()))
            .with_context(|| match &sources.file {
                Some(p) => format!("in {} or ROI_* environment variables", p.display()),
                None => "in ROI_* environment variables".to_owned(),
            })?;
        config.validate()?;
        Ok((config, sources))
    }

    fn validate(&self) -> Result<()> {
        self.serve.validate()?;
        if let Some(lake) = &self.lake
            && lake.contains("://")
            && !lake.starts_with("file://")
        {
            bail!(
                "lake {:?}: only local directories are supported by this build; object-store lakes (s3://) need the object_store backend, which is not built yet",
                mask_url(lake)
            );
        }
        Ok(())
    }

    /// The lake's root directory.
    pub fn lake_dir(&self) -> PathBuf {
        match &self.lake {
            Some(l) => PathBuf::from(l.strip_prefix("file://").unwrap_or(l)),
            None => self.data_dir.join("lake"),
        }
    }

    /// The store's URL: `database.url`, or the SQLite file `<data_dir>/roi.db`.
    pub fn database(&self) -> DatabaseConfig {
        let mut database = self.database.clone();
        if database.url.is_none() {
            database.url = Some(format!(
                "sqlite://{}",
                self.data_dir.join("roi.db").display()
            ));
        }
        database
    }

    /// The configuration as TOML with secrets masked.
    pub fn to_masked_toml(&self) -> Result<String> {
        let mut masked = self.clone();
        masked.lake = masked.lake.as_deref().map(mask_url);
        masked.database.url = masked.database.url.as_deref().map(mask_url);
        masked.serve.redis_url = masked.serve.redis_url.as_deref().map(mask_url);
        masked.serve.oidc = masked.serve.oidc.masked();
        masked.serve.notifications = masked.serve.notifications.masked();
        masked.serve.campaigns = masked.serve.campaigns.masked();
        masked.serve.documents = masked.serve.documents.masked();
        let mut text =
            toml::to_string_pretty(&masked).context("bug: configuration does not serialise")?;
        if masked.lake.is_none() {
            text = format!(
                "# lake = {:?} (default: <data_dir>/lake)\n{text}",
                self.lake_dir().display().to_string()
            );
        }
        if masked.database.url.is_none() {
            text = format!(
                "# database.url = {:?} (default: <data_dir>/roi.db)\n{text}",
                self.database().url.unwrap_or_default()
            );
        }
        Ok(text)
    }
}

/// Overlays `over` on `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_file_and_env_layer_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("roi.toml");
        std::fs::write(&file, "data_dir = \"/srv/roi\"\n[datasets]\nseed = 3\n").expect("write");
        let (c, s) = Config::load(
            Some(&file),
            env(&[("ROI_DATASETS__SEED", "11"), ("HOME", "/x")]),
        )
        .expect("load");
        assert_eq!(c.data_dir, PathBuf::from("/srv/roi"));
        assert_eq!(c.datasets.seed, 11);
        assert_eq!(c.datasets.scale, Scale::Small);
        assert_eq!(c.lake_dir(), PathBuf::from("/srv/roi/lake"));
        assert_eq!(s.env, vec!["ROI_DATASETS__SEED".to_owned()]);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err =
            Config::load(None, env(&[("ROI_DATASETS__SCALE", "huge")])).expect_err("bad scale");
        assert!(format!("{err:#}").contains("huge"), "{err:#}");
        let err = Config::load(None, env(&[("ROI_COLOUR", "blue")])).expect_err("unknown key");
        assert!(format!("{err:#}").contains("colour"), "{err:#}");
        let err =
            Config::load(None, env(&[("ROI_LAKE", "s3://k:secret@bucket/lake")])).expect_err("s3");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("s3://k:****@bucket/lake") && !msg.contains("secret"),
            "{msg}"
        );
    }

    #[test]
    fn one_field_of_a_nested_table_keeps_the_others_defaults() {
        let (c, _) = Config::load(
            None,
            env(&[("ROI_SERVE__LIMITS__LOGIN_PER_IP__LIMIT", "1000")]),
        )
        .expect("load");
        assert_eq!(c.serve.limits.login_per_ip.limit, 1000);
        assert_eq!(
            c.serve.limits.login_per_ip.window_secs,
            ServeConfig::default().limits.login_per_ip.window_secs
        );
    }

    #[test]
    fn config_show_masks_every_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("roi.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"postgres://roi:dbpass@db/roi\"\n[serve]\n\
             redis_url = \"redis://:redispass@cache:6379\"\n\
             [serve.oidc.providers.google]\npreset = \"google\"\nclient_id = \"id\"\n\
             client_secret = \"oidcpass\"\n\
             [serve.notifications]\nsmtp_url = \"smtps://mailer:smtppass@mail.example.com\"\n\
             sms_api_url = \"https://sms.example.com\"\nsms_account_sid = \"AC1\"\n\
             sms_auth_token = \"smspass\"\nsms_from = \"+15155550100\"\n",
        )
        .expect("write");
        let (c, _) = Config::load(Some(&file), env(&[])).expect("load");
        let shown = c.to_masked_toml().expect("toml");
        for secret in ["dbpass", "redispass", "oidcpass", "smtppass", "smspass"] {
            assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        }
        assert!(shown.contains("client_id = \"id\""), "{shown}");
    }
}

//! Models from the Hugging Face Hub: `org/name` or `org/name@revision`, fetched through hf-hub
//! with the settings the Python tools read from the environment, so one cache and one login
//! serve both:
//!
//! | variable       | meaning                                   | default                      |
//! |----------------|-------------------------------------------|------------------------------|
//! | `HF_HUB_CACHE` | the hub cache folder                      | `$HF_HOME/hub`               |
//! | `HF_HOME`      | Hugging Face's folder (cache and `token`) | `~/.cache/huggingface`       |
//! | `HF_ENDPOINT`  | the hub's address (a mirror)              | `https://huggingface.co`     |
//! | `HF_TOKEN`     | an access token (gated or private models) | the `token` file in HF_HOME  |

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The hub's address when `HF_ENDPOINT` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// A model on the hub: `org/name`, optionally pinned to a revision (branch, tag or commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub revision: Option<String>,
}

impl HubId {
    /// Parses `org/name` or `org/name@revision`; `None` when `spec` does not have that form (a
    /// path, a `.gguf` file name, a bare name), so the caller can report it as a missing file.
    pub fn parse(spec: &str) -> Option<HubId> {
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, rev)) => (repo, Some(rev)),
            None => (spec, None),
        };
        let (org, name) = repo.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty()
                && !p.starts_with('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        // Revisions may hold '/' (`refs/pr/1`) but never whitespace or another '@'.
        let rev_ok = |r: &str| !r.is_empty() && !r.contains(['@', ' ', '\t', '\n', '\\']);
        if !part_ok(org)
            || !part_ok(name)
            || name.ends_with(".gguf")
            || !revision.is_none_or(rev_ok)
        {
            return None;
        }
        Some(HubId {
            repo: repo.to_string(),
            revision: revision.map(String::from),
        })
    }
}

impl std::fmt::Display for HubId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.revision {
            Some(rev) => write!(f, "{}@{rev}", self.repo),
            None => f.write_str(&self.repo),
        }
    }
}

/// Where and how to reach the hub, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hf-hub cache folder (`models--org--name/…` lives inside).
    pub cache_dir: PathBuf,
    pub endpoint: String,
    pub token: Option<String>,
}

impl HubSettings {
    /// Reads `HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT` and `HF_TOKEN` from the process environment.
    pub fn from_env() -> Result<HubSettings> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The same from any source of variables (what the tests use: the process environment is
    /// shared by every test thread).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HubSettings> {
        let hf_home = match var("HF_HOME") {
            Some(home) => PathBuf::from(home),
            None => crate::load::home_dir(&var)
                .ok_or_else(|| {
                    Error::Hub(
                        "cannot find the home folder for the Hugging Face cache; set HF_HOME"
                            .into(),
                    )
                })?
                .join(".cache/huggingface"),
        };
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let endpoint = var("HF_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
            .trim_end_matches('/')
            .to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::Hub(format!(
                "HF_ENDPOINT must be an http(s) address, got `{endpoint}`"
            )));
        }
        let token = var("HF_TOKEN").or_else(|| read_token_file(&hf_home.join("token")));
        Ok(HubSettings {
            cache_dir,
            endpoint,
            token,
        })
    }
}

/// The token `huggingface-cli login` stores.
fn read_token_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// Downloads (or finds in the hub cache) a model's config, tokenizer and safetensors, and returns
/// the folder that holds them.
pub fn fetch(id: &HubId, settings: &HubSettings) -> Result<PathBuf> {
    let hint = |e: &dyn std::fmt::Display| {
        Error::Hub(format!(
            "could not fetch `{id}` from {} ({e}). Without network access, give a local path instead: a model folder (config.json, *.safetensors, tokenizer.json) or a .gguf file",
            settings.endpoint
        ))
    };
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_cache_dir(settings.cache_dir.clone())
        .with_endpoint(settings.endpoint.clone())
        .with_token(settings.token.clone())
        .with_progress(false)
        .build()
        .map_err(|e| hint(&e))?;
    let repo = api.repo(match &id.revision {
        Some(rev) => {
            hf_hub::Repo::with_revision(id.repo.clone(), hf_hub::RepoType::Model, rev.clone())
        }
        None => hf_hub::Repo::model(id.repo.clone()),
    });
    let config = repo.get("config.json").map_err(|e| hint(&e))?;
    repo.get("tokenizer.json").map_err(|e| hint(&e))?;
    match repo.get("model.safetensors.index.json") {
        Ok(index) => {
            let text = std::fs::read_to_string(&index)?;
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| hint(&e))?;
            let mut shards: Vec<String> = v["weight_map"]
                .as_object()
                .map(|m| {
                    m.values()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for s in shards {
                repo.get(&s).map_err(|e| hint(&e))?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors").map_err(|e| hint(&e))?;
        }
    }
    Ok(config.parent().map(Path::to_path_buf).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn ids_with_and_without_a_revision() {
        assert_eq!(
            HubId::parse("HuggingFaceTB/SmolLM2-135M"),
            Some(HubId {
                repo: "HuggingFaceTB/SmolLM2-135M".into(),
                revision: None
            })
        );
        let pinned = HubId::parse("openai-community/gpt2@e7da7f2").unwrap();
        assert_eq!(pinned.repo, "openai-community/gpt2");
        assert_eq!(pinned.revision.as_deref(), Some("e7da7f2"));
        assert_eq!(pinned.to_string(), "openai-community/gpt2@e7da7f2");
        let pr = HubId::parse("org/name@refs/pr/1").unwrap();
        assert_eq!(pr.revision.as_deref(), Some("refs/pr/1"));
    }

    #[test]
    fn paths_and_malformed_ids_are_not_hub_ids() {
        for spec in [
            "model.gguf",
            "models/x.gguf",
            "./org/name",
            "/abs/path",
            "a/b/c",
            "org/",
            "/name",
            "org/name@",
            "org/name@a@b",
            "org/na me",
            "org/name@main branch",
            "",
        ] {
            assert_eq!(HubId::parse(spec), None, "{spec:?}");
        }
    }

    #[test]
    fn settings_default_to_the_home_cache_and_the_public_hub() {
        let s = HubSettings::from_vars(vars(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(s.token, None);
    }

    #[test]
    fn settings_honour_hf_home_endpoint_and_token() {
        let s = HubSettings::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("HF_HOME", "/data/hf"),
            ("HF_ENDPOINT", "https://hf-mirror.example/"),
            ("HF_TOKEN", "hf_abc"),
        ]))
        .unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/data/hf/hub"));
        assert_eq!(s.endpoint, "https://hf-mirror.example");
        assert_eq!(s.token.as_deref(), Some("hf_abc"));
        let s = HubSettings::from_vars(vars(&[
            ("HF_HOME", "/data/hf"),
            ("HF_HUB_CACHE", "/fast/hub"),
        ]))
        .unwrap();
        assert_eq!(s.cache_dir, PathBuf::from("/fast/hub"));
        let bad = HubSettings::from_vars(vars(&[("HF_HOME", "/h"), ("HF_ENDPOINT", "hf.co")]));
        assert!(bad.unwrap_err().to_string().contains("HF_ENDPOINT"));
    }

    #[test]
    fn the_token_file_in_hf_home_is_used_when_hf_token_is_unset() {
        let home = std::env::temp_dir().join(format!("lantern-hub-token-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("token"), "hf_from_file\n").unwrap();
        let h = home.to_str().unwrap();
        let s = HubSettings::from_vars(vars(&[("HF_HOME", h)])).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_from_file"));
        let s = HubSettings::from_vars(vars(&[("HF_HOME", h), ("HF_TOKEN", "hf_env")])).unwrap();
        assert_eq!(s.token.as_deref(), Some("hf_env"), "HF_TOKEN wins");
        std::fs::remove_dir_all(&home).unwrap();
    }

    #[test]
    fn without_network_the_error_says_how_to_give_a_local_path() {
        let cache =
            std::env::temp_dir().join(format!("lantern-hub-offline-{}", std::process::id()));
        // Port 9 on the loopback address: refused at once, no network needed.
        let settings = HubSettings {
            cache_dir: cache.clone(),
            endpoint: "http://127.0.0.1:9".into(),
            token: None,
        };
        let id = HubId::parse("org/model@v1").unwrap();
        let err = fetch(&id, &settings).unwrap_err().to_string();
        assert!(err.contains("`org/model@v1`"), "{err}");
        assert!(err.contains("http://127.0.0.1:9"), "{err}");
        assert!(err.contains("local path"), "{err}");
        let _ = std::fs::remove_dir_all(&cache);
    }
}

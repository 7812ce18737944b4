//! Which interventions a request runs with: the server's (`--intervene`), then a named preset's
//! (`--presets FILE`, a JSON object `{"name": ["spec", ...]}`), then the request's own
//! (`"lantern": {"interventions": [...]}`), all in the CLI's spec syntax
//! (`lantern_steering::spec`).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use lantern_engine::{HookPoint, Intervention, Model};
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};

/// The `lantern` extension field of a request.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanternExt {
    #[serde(default)]
    pub interventions: Vec<String>,
    /// A preset name, or several.
    #[serde(default)]
    pub preset: Option<OneOrMany>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Interventions parsed once, with the specs they came from (what the response reports).
#[derive(Clone, Default)]
pub struct Steering {
    pub specs: Vec<String>,
    pub parsed: Vec<(HookPoint, Intervention)>,
}

/// The server's own steering and its presets.
pub struct SteeringConfig {
    pub server: Steering,
    pub presets: BTreeMap<String, Steering>,
}

impl SteeringConfig {
    /// Parses the server's specs and the presets file (errors name the spec or preset).
    pub fn load(model: &Model, specs: &[String], presets: Option<&Path>) -> anyhow::Result<Self> {
        let server = parse_all(model, specs).map_err(|e| anyhow::anyhow!(e.message))?;
        let mut table = BTreeMap::new();
        if let Some(path) = presets {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the presets file {}", path.display()))?;
            let raw: BTreeMap<String, Vec<String>> =
                serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{}: expected a JSON object of preset name -> list of intervention specs",
                        path.display()
                    )
                })?;
            for (name, specs) in raw {
                let parsed = parse_all(model, &specs)
                    .map_err(|e| anyhow::anyhow!("preset `{name}`: {}", e.message))?;
                table.insert(name, parsed);
            }
        }
        if table.is_empty() && presets.is_some() {
            bail!("the presets file defines no preset");
        }
        Ok(SteeringConfig {
            server: server.clone(),
            presets: table,
        })
    }

    /// The server's, the presets' and the request's interventions, in that order.
    pub fn for_request(&self, model: &Model, ext: Option<LanternExt>) -> ApiResult<Steering> {
        let mut out = self.server.clone();
        let Some(ext) = ext else {
            return Ok(out);
        };
        for name in ext.preset.map(OneOrMany::into_vec).unwrap_or_default() {
            let preset = self.presets.get(&name).ok_or_else(|| {
                ApiError::invalid(
                    Some("lantern.preset"),
                    format!(
                        "unknown preset `{name}` (known: {})",
                        if self.presets.is_empty() {
                            "none; start the server with --presets FILE".to_string()
                        } else {
                            self.presets.keys().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                )
            })?;
            out.specs.extend(preset.specs.iter().cloned());
            out.parsed.extend(preset.parsed.iter().cloned());
        }
        let own = parse_all(model, &ext.interventions)?;
        out.specs.extend(own.specs);
        out.parsed.extend(own.parsed);
        Ok(out)
    }
}

/// Parses specs; a row selector is refused (rows are the server's batch, not the client's).
pub fn parse_all(model: &Model, specs: &[String]) -> ApiResult<Steering> {
    let mut out = Steering::default();
    for spec in specs {
        let bad = |message: String| {
            ApiError::invalid(Some("lantern.interventions"), message)
                .with_code("invalid_intervention")
        };
        let (point, iv) = lantern_steering::spec::parse_intervention(spec, model).map_err(|e| {
            let m = e.to_string();
            bad(if m.contains(spec.as_str()) {
                m
            } else {
                format!("intervention `{spec}`: {m}")
            })
        })?;
        if iv.selection.batch.is_some() {
            return Err(bad(format!(
                "intervention `{spec}`: row= is not available on the server (each request is \
                 its own row of a shared batch)"
            )));
        }
        out.specs.push(spec.clone());
        out.parsed.push((point, iv));
    }
    Ok(out)
}

//! Hand a run to other tools: the weights as safetensors (names = the module path, e.g.
//! `decoder.layers.0.weight` for a VAE, `g.net.layers.0.weight` for a GAN's generator), and the
//! training log as CSV.
//!
//! Layouts (burn's, documented for numpy users): a linear layer's `weight` is [in, out] and
//! computes y = x·W + b; a convolution's `weight` is [out, in, kh, kw]; a transposed
//! convolution's is [in, out, kh, kw]. Metadata (`__metadata__`) records the model kind, image
//! shape, latent size, hidden widths, decoder and activations.

use crate::models::Model;
use anyhow::{Context, Result, bail};
use burn::module::{Module, ModuleVisitor};
use burn::prelude::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// (name, shape, values) of every float parameter, in module order.
pub fn named_tensors(model: &Model) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    // The module tree announces each field/index as it descends: the stack is the tensor's path.
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let t = param.val();
            // Enum variants (capitalised: `Vae`, `Conv`) are not part of the public names.
            let name: Vec<&str> =
                self.path.iter().map(String::as_str).filter(|p| !p.starts_with(char::is_uppercase)).collect();
            self.out.push((name.join("."), t.dims().to_vec(), crate::models::blocks::to_vec(t)));
        }
    }
    let mut c = Collect { path: Vec::new(), out: Vec::new() };
    model.net.visit(&mut c);
    c.out
}

fn metadata(model: &Model) -> HashMap<String, String> {
    let s = &model.spec;
    let activations = s.kind.decl().activations;
    HashMap::from([
        ("format".to_string(), "latentlab".to_string()),
        ("model".to_string(), s.kind.name().to_string()),
        ("channels".to_string(), s.shape.channels.to_string()),
        ("height".to_string(), s.shape.height.to_string()),
        ("width".to_string(), s.shape.width.to_string()),
        ("latent_dim".to_string(), s.latent_dim.to_string()),
        ("num_classes".to_string(), s.num_classes.to_string()),
        ("hidden".to_string(), format!("{:?}", s.hidden)),
        ("decoder".to_string(), format!("{:?}", s.decoder).to_lowercase()),
        ("linear_layout".to_string(), "weight [in, out]: y = x @ weight + bias".to_string()),
        ("activations".to_string(), activations.to_string()),
    ])
}

/// Write the model's weights as a safetensors file (atomically).
pub fn safetensors(model: &Model, out: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    let tensors = named_tensors(model);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.into_iter().map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let mut views = Vec::new();
    for (n, s, b) in &bytes {
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
            .map_err(|e| anyhow::anyhow!("tensor {n}: {e}"))?;
        views.push((n.clone(), view));
    }
    let file = safetensors::serialize(views, Some(metadata(model))).map_err(|e| anyhow::anyhow!("safetensors: {e}"))?;
    crate::util::write_atomic(out, &file)?;
    Ok(bytes.into_iter().map(|(n, s, _)| (n, s)).collect())
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), format!("\"{}\"", s.replace('"', "\"\"")));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// `metrics.jsonl` as CSV: one row per line, one column per (flattened) key, e.g. `train.loss`.
pub fn metrics_csv(metrics: &Path, out: &Path) -> Result<usize> {
    let lines =
        crate::train::log::read(metrics).with_context(|| format!("{} has no metrics log", metrics.display()))?;
    if lines.is_empty() {
        bail!("{} is empty", metrics.display());
    }
    let rows: Vec<BTreeMap<String, String>> = lines
        .iter()
        .map(|l| {
            let mut m = BTreeMap::new();
            flatten("", l, &mut m);
            m
        })
        .collect();
    let mut cols: Vec<String> = rows.iter().flat_map(|r| r.keys().cloned()).collect();
    cols.sort();
    cols.dedup();
    // Step and kind first: what a spreadsheet user sorts by.
    for first in ["kind", "epoch", "step"] {
        if let Some(i) = cols.iter().position(|c| c == first) {
            let c = cols.remove(i);
            cols.insert(0, c);
        }
    }
    let mut text = cols.join(",") + "\n";
    for r in &rows {
        text += &cols.iter().map(|c| r.get(c).cloned().unwrap_or_default()).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    crate::util::write_atomic(out, text.as_bytes())?;
    Ok(rows.len())
}

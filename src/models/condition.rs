//! What a conditional model is conditioned on: one concept the data provides — nothing, a class,
//! a vector of binary attributes (CelebA's), or a caption. Every model function takes the
//! condition of each example as host rows [n × dim] (`ModelSpec::cond_dim`): a one-hot class, the
//! attributes as ±1, or a caption's bag of words. Where the rows come from is decided here and
//! only here: from the data (training, held-out losses, encoding a dataset), from a user's request
//! (`--class`, `--attr`), or by default (samples that follow the data's conditions). A new kind
//! of condition is one new variant of `Condition`, not another argument through every command.

use super::{ModelKind, ModelSpec, blocks, stackgan::TextSpec};
use crate::data::{Attributes, Dataset};
use anyhow::{Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Real attribute rows a spec keeps, so samples can follow the data's attribute combinations
/// without the dataset at hand (a smiling bearded woman is rare in CelebA; independent draws
/// per attribute would make her common).
pub const EXAMPLE_ROWS: usize = 512;

/// What a model is conditioned on (stored in the model spec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Condition {
    /// Unconditional.
    None,
    /// A class label, one-hot over `classes`.
    Class { classes: usize },
    /// Binary attributes, +1 present and −1 absent, in the order of `names`. `rates`: the share
    /// of training images with each (an attribute a request leaves unstated gets 2·rate − 1, its
    /// mean); `examples`: real training rows as strings of 0/1, which unrequested samples cycle.
    Attributes { names: Vec<String>, rates: Vec<f32>, examples: Vec<String> },
    /// A caption, as a bag of words over the model's vocabulary (`ModelSpec::text`).
    Caption,
}

/// A user's choice of condition for sampling (`--class`, `--attr`), or none (the default rows).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Request {
    #[default]
    Default,
    Class(u8),
    /// Attributes named with whether the image should have (true) or lack (false) each.
    Attrs(Vec<(String, bool)>),
}

/// Parse `Smiling,-Male,Eyeglasses` (a minus: the attribute absent).
pub fn parse_attrs(s: &str) -> Result<Vec<(String, bool)>> {
    let mut out: Vec<(String, bool)> = Vec::new();
    for t in s.split(',').map(str::trim) {
        let (name, has) = match t.strip_prefix('-') {
            Some(n) => (n.trim(), false),
            None => (t.strip_prefix('+').unwrap_or(t).trim(), true),
        };
        if name.is_empty() {
            bail!("'{s}': expected attribute names separated by commas, a minus for absent (e.g. Smiling,-Male)");
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            bail!("'{s}': attribute '{name}' is named twice");
        }
        out.push((name.to_string(), has));
    }
    Ok(out)
}

/// How `--condition` was given: `none`, `class`, `attributes` (all of them) or
/// `attributes:NAME,NAME,…` (a subset).
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    None,
    Class,
    Attributes(Option<Vec<String>>),
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Choice, String> {
        let bad = || {
            format!(
                "--condition '{s}': expected none, class, attributes, or attributes:NAME,NAME,… (e.g. attributes:Smiling,Male,Eyeglasses)"
            )
        };
        match s.trim() {
            "none" => Ok(Choice::None),
            "class" => Ok(Choice::Class),
            "attributes" => Ok(Choice::Attributes(None)),
            t => {
                let rest = t.strip_prefix("attributes:").ok_or_else(bad)?;
                let names: Vec<String> = rest.split(',').map(|n| n.trim().to_string()).collect();
                if names.iter().any(String::is_empty) {
                    return Err(bad());
                }
                Ok(Choice::Attributes(Some(names)))
            }
        }
    }
}

/// What runs written before conditions were stored (and runs whose condition is the one their
/// model implies) are conditioned on: a caption for text models, a class for conditional ones.
fn implied(kind: ModelKind, num_classes: usize) -> Condition {
    let d = kind.decl();
    if d.text {
        Condition::Caption
    } else if d.conditional {
        Condition::Class { classes: num_classes }
    } else {
        Condition::None
    }
}

/// The condition a run gets on `data` from `--condition` (None: the model's own default — a
/// class where the data has classes, its attributes where it has only those). Stored in the spec
/// only when it differs from what the model implies, so specs of older runs stay as they were.
pub fn resolve(kind: ModelKind, choice: Option<&Choice>, data: &Dataset, seed: u64) -> Result<Option<Condition>> {
    let decl = kind.decl();
    if choice.is_some() && !decl.accepts("condition") {
        bail!(
            "--condition does not apply to model '{}' (conditional models: cvae, cgan, and the convolutional dcgan and lsgan)",
            kind.name()
        );
    }
    let attrs = data.attributes.as_ref().filter(|a| a.k() > 0);
    let choice = match choice {
        Some(c) => c.clone(),
        None if decl.conditional && !decl.text && data.num_classes < 2 && attrs.is_some() => Choice::Attributes(None),
        None => return Ok(None),
    };
    let cond = match choice {
        Choice::None => Condition::None,
        Choice::Class => {
            if data.num_classes < 2 {
                bail!("--condition class needs a dataset with class labels; this one has none");
            }
            Condition::Class { classes: data.num_classes }
        }
        Choice::Attributes(names) => {
            let Some(a) = attrs else {
                bail!(
                    "--condition attributes needs a dataset with attributes (CelebA's list_attr_celeba.txt); this one has none"
                )
            };
            attributes(a, names.as_deref(), seed)?
        }
    };
    Ok((cond != implied(kind, data.num_classes)).then_some(cond))
}

/// The attribute condition of `names` (all when None), with their training rates and example rows.
fn attributes(a: &Attributes, names: Option<&[String]>, seed: u64) -> Result<Condition> {
    let cols: Vec<usize> = match names {
        None => (0..a.k()).collect(),
        Some(names) => {
            let mut cols = Vec::with_capacity(names.len());
            for n in names {
                let j = a.index(n).ok_or_else(|| {
                    anyhow::anyhow!("--condition: no attribute '{n}'; the dataset has {}", a.names.join(", "))
                })?;
                if cols.contains(&j) {
                    bail!("--condition: attribute '{n}' is named twice");
                }
                cols.push(j);
            }
            cols
        }
    };
    let n = a.n();
    let mut picks: Vec<usize> = (0..n).collect();
    rand::seq::SliceRandom::shuffle(&mut picks[..], &mut crate::util::rng(seed, crate::util::Stream::Sample, 77));
    picks.truncate(EXAMPLE_ROWS);
    let examples =
        picks.iter().map(|&i| cols.iter().map(|&j| if a.row(i)[j] == 1 { '1' } else { '0' }).collect()).collect();
    Ok(Condition::Attributes {
        names: cols.iter().map(|&j| a.names[j].clone()).collect(),
        rates: cols.iter().map(|&j| a.rate(j) as f32).collect(),
        examples,
    })
}

fn pm(present: bool) -> f32 {
    if present { 1.0 } else { -1.0 }
}

impl Condition {
    /// One line for messages and the explorer.
    pub fn describe(&self) -> String {
        match self {
            Condition::None => "none".into(),
            Condition::Class { classes } => format!("a class of {classes}"),
            Condition::Attributes { names, .. } if names.len() > 6 => {
                format!("{} attributes ({}, …, {})", names.len(), names[..3].join(", "), names[names.len() - 1])
            }
            Condition::Attributes { names, .. } => format!("{} attributes ({})", names.len(), names.join(", ")),
            Condition::Caption => "a caption (--text)".into(),
        }
    }
}

impl ModelSpec {
    /// What this model is conditioned on.
    pub fn condition(&self) -> Cow<'_, Condition> {
        match &self.condition {
            Some(c) => Cow::Borrowed(c),
            None => Cow::Owned(implied(self.kind, self.num_classes)),
        }
    }

    /// Width of a condition row (0: unconditional).
    pub fn cond_dim(&self) -> usize {
        match &*self.condition() {
            Condition::None => 0,
            Condition::Class { classes } => *classes,
            Condition::Attributes { names, .. } => names.len(),
            Condition::Caption => self.text.as_ref().map_or(1, |t| t.vocab.len().max(1)),
        }
    }

    /// Whether samples need a condition.
    pub fn is_conditioned(&self) -> bool {
        self.cond_dim() > 0
    }

    /// Conditioned on a class (`--class` and per-class pictures mean something).
    pub fn has_classes(&self) -> bool {
        match &*self.condition() {
            Condition::Class { .. } => true,
            // Captions with class words ("a seven"); face captions have none.
            Condition::Caption => self.text.as_ref().is_some_and(|t| !t.class_words.is_empty()),
            _ => false,
        }
    }

    /// Conditioned on a class label (not a caption).
    pub fn by_class(&self) -> bool {
        matches!(&*self.condition(), Condition::Class { .. })
    }

    /// The attribute names of an attribute-conditioned model (empty otherwise).
    pub fn cond_attributes(&self) -> Vec<String> {
        match &*self.condition() {
            Condition::Attributes { names, .. } => names.clone(),
            _ => Vec::new(),
        }
    }

    /// Rows for the given images of `data`, as training and held-out evaluation see them.
    pub fn cond_of_data(&self, data: &Dataset, idx: &[usize]) -> Vec<f32> {
        match &*self.condition() {
            Condition::None => Vec::new(),
            Condition::Caption if self.text.as_ref().is_some_and(|t| t.annotated()) && data.attributes.is_some() => {
                // Faces: each image's own caption (the grammar's first, fullest sentence).
                let (t, a) = (self.text.as_ref().expect("checked"), data.attributes.as_ref().expect("checked"));
                let tokens: Vec<Vec<u32>> = idx
                    .iter()
                    .map(|&i| {
                        let caps = crate::data::captions::faces::captions(&a.names, a.row(i));
                        t.tokens_lossy(&caps[0])
                    })
                    .collect();
                t.bags(&tokens)
            }
            Condition::Class { .. } | Condition::Caption => {
                let labels: Vec<u8> = idx.iter().map(|&i| data.label(i).unwrap_or(0)).collect();
                self.class_rows_of(&labels)
            }
            Condition::Attributes { names, .. } => {
                let a = data.attributes.as_ref();
                let cols: Vec<Option<usize>> = names.iter().map(|n| a.and_then(|a| a.index(n))).collect();
                let mut rows = Vec::with_capacity(idx.len() * names.len());
                for &i in idx {
                    for c in &cols {
                        rows.push(match (a, c) {
                            (Some(a), Some(j)) => pm(a.row(i)[*j] == 1),
                            _ => 0.0,
                        });
                    }
                }
                rows
            }
        }
    }

    /// Class-keyed rows (one-hot, or the class captions of a text model); empty when unconditioned.
    pub fn class_rows_of(&self, labels: &[u8]) -> Vec<f32> {
        match &*self.condition() {
            Condition::Class { classes } => blocks::one_hot_host(labels, *classes),
            Condition::Caption => {
                let t: &TextSpec = self.text.as_ref().expect("text models carry a vocabulary");
                t.bags(&t.class_tokens(labels))
            }
            _ => Vec::new(),
        }
    }

    /// Rows for `n` samples a user asks for; errors name what does not fit the model.
    pub fn cond_rows(&self, req: &Request, n: usize) -> Result<Vec<f32>> {
        let cond = self.condition();
        match (req, &*cond) {
            (Request::Default, _) => Ok(self.cond_default(n)),
            (Request::Class(k), Condition::Class { classes }) => {
                if *k as usize >= *classes {
                    bail!("--class {k} is out of range: the model has {classes} classes (0–{})", classes - 1);
                }
                Ok(self.class_rows_of(&vec![*k; n]))
            }
            (Request::Class(k), Condition::Caption) if self.has_classes() => Ok(self.class_rows_of(&vec![*k; n])),
            (Request::Attrs(want), Condition::Attributes { names, rates, .. }) => {
                let mut row: Vec<f32> = rates.iter().map(|r| 2.0 * r - 1.0).collect();
                for (w, has) in want {
                    let j = names
                        .iter()
                        .position(|n| n == w)
                        .or_else(|| names.iter().position(|n| n.eq_ignore_ascii_case(w)));
                    let Some(j) = j else {
                        bail!("--attr: the model is not conditioned on '{w}'; it is on {}", names.join(", "))
                    };
                    row[j] = pm(*has);
                }
                Ok(row.repeat(n))
            }
            (Request::Class(_), c) => bail!(
                "--class needs a class-conditional model (cvae, cgan, or a run with --condition class); model '{}' is conditioned on {}",
                self.kind.name(),
                c.describe()
            ),
            (Request::Attrs(_), c) => bail!(
                "--attr needs a model conditioned on attributes (train with --condition attributes); model '{}' is conditioned on {}",
                self.kind.name(),
                c.describe()
            ),
        }
    }

    /// Rows for `n` samples nobody chose a condition for: the classes in turn, or the kept
    /// training attribute rows in turn, so the samples follow the data's conditions.
    pub fn cond_default(&self, n: usize) -> Vec<f32> {
        match &*self.condition() {
            Condition::None => Vec::new(),
            Condition::Class { classes } => {
                self.class_rows_of(&(0..n).map(|i| (i % classes) as u8).collect::<Vec<_>>())
            }
            // Faces: the kept training captions in turn.
            Condition::Caption if self.text.as_ref().is_some_and(|t| t.annotated()) => {
                let t = self.text.as_ref().expect("checked");
                t.bags(&(0..n).map(|i| t.example_tokens(i)).collect::<Vec<_>>())
            }
            Condition::Caption => {
                let k = self.num_classes.max(1);
                self.class_rows_of(&(0..n).map(|i| (i % k) as u8).collect::<Vec<_>>())
            }
            Condition::Attributes { names, rates, examples } => {
                if examples.is_empty() {
                    return rates.iter().map(|r| 2.0 * r - 1.0).collect::<Vec<_>>().repeat(n);
                }
                let mut rows = Vec::with_capacity(n * names.len());
                for i in 0..n {
                    rows.extend(examples[i % examples.len()].chars().map(|c| pm(c == '1')));
                }
                rows
            }
        }
    }

    /// The rows of `cond` as a tensor [n, dim], or None for an unconditioned model. Rows left
    /// empty by a caller get the default ones.
    pub fn cond_tensor(&self, cond: &[f32], n: usize, device: &Device) -> Option<Tensor<2>> {
        let d = self.cond_dim();
        if d == 0 {
            return None;
        }
        let rows = if cond.is_empty() { self.cond_default(n) } else { cond.to_vec() };
        assert_eq!(rows.len(), n * d, "condition rows [{n} × {d}] for {n} examples");
        Some(blocks::matrix(rows, n, d, device))
    }

    /// Rows `lo..hi` of host condition rows (empty stays empty).
    pub fn cond_slice<'a>(&self, cond: &'a [f32], lo: usize, hi: usize) -> &'a [f32] {
        let d = self.cond_dim();
        if cond.is_empty() || d == 0 { &[] } else { &cond[lo * d..hi * d] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lists_parse_with_negation_and_refuse_nonsense() {
        assert_eq!(
            parse_attrs("Smiling, -Male,+Eyeglasses").unwrap(),
            vec![("Smiling".into(), true), ("Male".into(), false), ("Eyeglasses".into(), true)]
        );
        assert!(parse_attrs("Smiling,,Male").is_err());
        assert!(parse_attrs("Smiling,-smiling").unwrap_err().to_string().contains("named twice"));
        assert_eq!(
            "attributes:Smiling,Male".parse::<Choice>(),
            Ok(Choice::Attributes(Some(vec!["Smiling".into(), "Male".into()])))
        );
        assert_eq!("attributes".parse::<Choice>(), Ok(Choice::Attributes(None)));
        assert!("colour".parse::<Choice>().unwrap_err().contains("expected none, class, attributes"));
    }
}

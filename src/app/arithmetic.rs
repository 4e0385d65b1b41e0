//! `latentlab arithmetic`: decode mean(A) − mean(B) + mean(C) and neighbours of the result
//! (Radford et al. 2016). With attribute groups (`attr:Smiling,-Male`) the result is checked, not
//! just drawn: the dataset's attribute classifier (its feature network) reads the result and its
//! neighbours, and the share of them with the attributes A − B + C should have is printed and
//! written beside the picture, next to the same share for each group's own mean.

use super::OpenRun;
use crate::backend::{self, DeviceChoice};
use crate::data::Splits;
use crate::eval::features::{self, Features};
use crate::models::Model;
use crate::run::Which;
use crate::util::{Stream, rng};
use crate::viz;
use crate::viz::arithmetic::{Group, combine, matches, select_stroke, target};
use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug, Clone)]
pub struct ArithmeticRequest {
    pub run: PathBuf,
    /// Group A: label:K (encoder models), sample:I,J,… (indices into `sample --seed S`) or
    /// attr:NAME,-NAME,… (faces with / without these attributes, e.g. attr:Smiling,-Male).
    #[arg(long, allow_hyphen_values = true)]
    pub a: Group,
    /// Group B (subtracted).
    #[arg(long, allow_hyphen_values = true)]
    pub b: Group,
    /// Group C (added).
    #[arg(long, allow_hyphen_values = true)]
    pub c: Group,
    /// Seed of the sample sheet that sample:… indices refer to (as given to `sample --seed`), and
    /// of the neighbours' jitter.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Codes averaged per label:K or attr:… group (test images for encoder models; classified
    /// samples for GANs).
    #[arg(long, default_value_t = 64)]
    pub group_size: usize,
    /// GANs with attr:… groups: prior draws the attribute classifier sorts into the groups.
    #[arg(long, default_value_t = 4000)]
    pub pool: usize,
    /// Neighbours of the result to show (result + 0.25 × Gaussian jitter).
    #[arg(long, default_value_t = 4)]
    pub neighbours: usize,
    /// Class to decode with (conditional models).
    #[arg(long, default_value_t = 0)]
    pub class: u8,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output PNG [default: <run>/final/arithmetic.png]; attribute checks go beside it as .json.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Which::Latest)]
    pub checkpoint: Which,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
}

/// How often the classifier sees the wanted attributes in a row of decoded codes.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Share {
    /// What the images should show, e.g. "Smiling,Male".
    pub wanted: String,
    /// Images read (the code and its neighbours).
    pub images: usize,
    /// Share with every wanted attribute.
    pub all: f64,
    /// Share per wanted attribute.
    pub each: Vec<(String, f64)>,
}

/// The attribute check of one arithmetic picture.
#[derive(Clone, Debug, Serialize)]
pub struct Checked {
    pub result: Share,
    /// Groups A, B and C, each by its own attributes.
    pub groups: Vec<Share>,
    /// How the groups' codes were found and what read the images.
    pub protocol: String,
}

/// What `arithmetic` wrote.
pub struct Arithmetic {
    pub png: PathBuf,
    pub checked: Option<(PathBuf, Checked)>,
}

/// Codes of a group's members, one row each.
type Codes = Vec<Vec<f32>>;

struct Ctx<'a> {
    a: &'a ArithmeticRequest,
    model: &'a Model,
    run: &'a OpenRun,
    data: Option<Splits>,
    feats: Option<Features>,
}

impl Ctx<'_> {
    fn data(&mut self) -> Result<&Splits> {
        if self.data.is_none() {
            self.data = Some(self.run.data(self.a.data_dir.as_deref())?);
        }
        Ok(self.data.as_ref().expect("loaded above"))
    }

    /// The dataset's attribute classifier (trained once and cached, as `eval` does).
    fn feats(&mut self) -> Result<&Features> {
        if self.feats.is_none() {
            let dir = crate::data::data_dir(self.a.data_dir.as_deref().or(self.run.cfg.data_dir.as_deref()));
            let splits = self.data()?.clone();
            let f = features::load_or_train(&splits, &dir, false, true)?.to_device(&self.run.model.device);
            if f.attribute_names().is_empty() {
                bail!("attr:… groups need a dataset with attributes (CelebA); '{}' has none", splits.name);
            }
            self.feats = Some(f);
        }
        Ok(self.feats.as_ref().expect("loaded above"))
    }

    /// Columns of the stated attributes in `names`; an unknown name is an error listing them.
    fn columns(names: &[String], stated: &[(String, bool)]) -> Result<Vec<(usize, bool)>> {
        stated
            .iter()
            .map(|(n, has)| match names.iter().position(|m| m.eq_ignore_ascii_case(n)) {
                Some(j) => Ok((j, *has)),
                None => bail!("attr:{n}: no such attribute; the dataset's are {}", names.join(", ")),
            })
            .collect()
    }

    /// Attribute rows (0/1) of host images in [0,1] by the classifier.
    fn read(&mut self, images: &[f32]) -> Result<Vec<u8>> {
        let probs = features::attribute_probs(self.feats()?, images)?;
        Ok(probs.iter().map(|&p| u8::from(p > crate::eval::attributes::THRESHOLD)).collect())
    }

    fn codes(&mut self, g: &Group) -> Result<Codes> {
        let (model, a) = (self.model, self.a);
        let spec = &model.spec;
        let l = spec.latent_dim;
        match g {
            Group::Samples(idx) => {
                // The sample sheet `sample --seed S` draws; indices past its length are refused.
                let n = idx.iter().max().map_or(0, |m| m + 1);
                if n > 100_000 {
                    bail!("sample index {} too large (at most 99999)", n - 1);
                }
                let z = model.prior(n, &mut rng(a.seed, Stream::Sample, 0));
                Ok(idx.iter().map(|&i| z[i * l..(i + 1) * l].to_vec()).collect())
            }
            Group::Label(k, stroke) => {
                if !spec.kind.has_encoder() {
                    bail!(
                        "label:{k} needs an encoder, and '{}' has none; pick images from a sample sheet with sample:I,J,…",
                        spec.kind.name()
                    );
                }
                let d = self.data()?;
                let Some(labels) = &d.test.labels else { bail!("label:{k}: the dataset has no labels") };
                let of_class: Vec<(usize, u64)> = (0..d.test.n)
                    .filter(|&i| labels[i] == *k)
                    .map(|i| (i, d.test.image(i).iter().map(|&p| p as u64).sum()))
                    .collect();
                let mut idx = select_stroke(of_class, *stroke);
                idx.truncate(a.group_size.max(1));
                if idx.is_empty() {
                    bail!("label:{k}: no test image has label {k} ({} classes)", d.test.num_classes);
                }
                let z = model.encode_dataset(&d.test.subset(&idx))?;
                Ok(z.chunks(l).map(<[f32]>::to_vec).collect())
            }
            Group::Attr(stated) if spec.kind.has_encoder() => {
                let d = self.data()?;
                let Some(attrs) = &d.test.attributes else {
                    bail!("attr:… groups need a dataset with attributes (CelebA); '{}' has none", d.name)
                };
                let cols = Self::columns(&attrs.names, stated)?;
                let idx: Vec<usize> =
                    (0..d.test.n).filter(|&i| matches(attrs.row(i), &cols)).take(a.group_size.max(1)).collect();
                if idx.is_empty() {
                    bail!("{}: no test face is annotated with these attributes", describe(stated));
                }
                let z = model.encode_dataset(&d.test.subset(&idx))?;
                Ok(z.chunks(l).map(<[f32]>::to_vec).collect())
            }
            Group::Attr(stated) => {
                // No encoder: the prior draws whose decoded images the classifier puts in the group.
                if a.pool == 0 || a.pool > 100_000 {
                    bail!("--pool must be between 1 and 100000, got {}", a.pool);
                }
                let cols = Self::columns(self.feats()?.attribute_names(), stated)?;
                let z = model.prior(a.pool, &mut rng(a.seed, Stream::Sample, 3));
                let rows = self.read(&model.decode_host(&z, &cond(model, a, a.pool)))?;
                let k = self.feats()?.attribute_names().len();
                let idx: Vec<usize> = (0..a.pool)
                    .filter(|&i| matches(&rows[i * k..(i + 1) * k], &cols))
                    .take(a.group_size.max(1))
                    .collect();
                if idx.is_empty() {
                    bail!("{}: none of {} samples has these attributes; raise --pool", describe(stated), a.pool);
                }
                Ok(idx.iter().map(|&i| z[i * l..(i + 1) * l].to_vec()).collect())
            }
        }
    }

    /// The share of `images` (host, [0,1]) the classifier gives every stated attribute.
    fn share(&mut self, images: &[f32], stated: &[(String, bool)]) -> Result<Share> {
        let rows = self.read(images)?;
        let names = self.feats()?.attribute_names().to_vec();
        let cols = Self::columns(&names, stated)?;
        let k = names.len();
        let n = rows.len() / k;
        let frac = |f: &dyn Fn(&[u8]) -> bool| rows.chunks(k).filter(|r| f(r)).count() as f64 / n.max(1) as f64;
        Ok(Share {
            wanted: describe(stated),
            images: n,
            all: frac(&|r| matches(r, &cols)),
            each: cols.iter().map(|&(j, has)| (names[j].clone(), frac(&|r| matches(r, &[(j, has)])))).collect(),
        })
    }
}

fn describe(stated: &[(String, bool)]) -> String {
    stated.iter().map(|(n, has)| if *has { n.clone() } else { format!("-{n}") }).collect::<Vec<_>>().join(",")
}

/// Condition rows for `n` decoded codes: `--class` for a class model, every attribute at its mean
/// for an attribute model (the arithmetic happens on the codes), none otherwise.
fn cond(model: &Model, a: &ArithmeticRequest, n: usize) -> Vec<f32> {
    let spec = &model.spec;
    if spec.has_classes() {
        spec.class_rows_of(&vec![a.class; n])
    } else {
        spec.cond_rows(&crate::models::condition::Request::Attrs(vec![]), n).unwrap_or_default()
    }
}

/// Decode mean(A) − mean(B) + mean(C) and neighbours of the result; check attribute groups.
pub fn arithmetic(a: ArithmeticRequest) -> Result<Arithmetic> {
    let run = OpenRun::open(&a.run, a.checkpoint, backend::device(a.device)?)?;
    let model = &run.model;
    let spec = model.spec.clone();
    let l = spec.latent_dim;
    if spec.has_classes() {
        run.check_class(a.class)?;
    }
    let mut cx = Ctx { a: &a, model, run: &run, data: None, feats: None };
    let (ga, gb, gc) = (cx.codes(&a.a)?, cx.codes(&a.b)?, cx.codes(&a.c)?);
    let [ma, mb, mc, r] = combine(&ga, &gb, &gc)?;
    // Each code with `neighbours` jittered copies (Radford et al. added ±0.25 noise).
    let jitter = crate::util::normal_vec(&mut rng(a.seed, Stream::Sample, 2), a.neighbours * l);
    let around = |m: &[f32]| -> Vec<f32> {
        let mut z = m.to_vec();
        for j in jitter.chunks(l) {
            z.extend(m.iter().zip(j).map(|(x, e)| x + 0.25 * e));
        }
        z
    };
    let mut z: Vec<f32> = [ma.clone(), mb.clone(), mc.clone()].concat();
    z.extend(around(&r));
    let n = 3 + 1 + a.neighbours;
    let imgs = model.decode_host(&z, &cond(model, &a, n));
    let png = a.out.clone().unwrap_or_else(|| run.dir.final_file("arithmetic.png"));
    viz::grid::save_grid(&imgs, spec.shape, n, &png)?;

    let wanted = target(&a.a, &a.b, &a.c);
    if wanted.is_empty() {
        return Ok(Arithmetic { png, checked: None });
    }
    let d = spec.shape.len();
    let result = cx.share(&imgs[3 * d..], &wanted)?;
    let mut groups = Vec::new();
    for (g, m) in [(&a.a, &ma), (&a.b, &mb), (&a.c, &mc)] {
        let zs = around(m);
        groups.push(cx.share(&model.decode_host(&zs, &cond(model, &a, 1 + a.neighbours)), g.attributes())?);
    }
    let how = if spec.kind.has_encoder() {
        format!("attr groups: mean encoder code of up to {} annotated test faces each", a.group_size)
    } else {
        format!(
            "attr groups: mean prior draw of up to {} of {} samples (seed {}) the classifier puts in each",
            a.group_size, a.pool, a.seed
        )
    };
    let f = cx.feats()?;
    let protocol = format!(
        "{how}; each code decoded with {} neighbours (+0.25·N(0, I)); read by the attribute network {} \
         (probability > 0.5; its mean held-out accuracy {:.3})",
        a.neighbours,
        f.hash(),
        f.meta.attribute_accuracy_mean().unwrap_or(f64::NAN)
    );
    let checked = Checked { result, groups, protocol };
    let json = png.with_extension("json");
    crate::util::write_atomic(&json, serde_json::to_string_pretty(&checked)?.as_bytes())?;
    Ok(Arithmetic { png, checked: Some((json, checked)) })
}

/// The check as lines for the terminal.
pub fn summary(c: &Checked, json: &Path) -> String {
    let line = |label: &str, s: &Share| {
        let each: Vec<String> = s.each.iter().map(|(n, v)| format!("{n} {:.0} %", 100.0 * v)).collect();
        format!("{label:<8} {:<28} {:>5.0} % of {} images ({})\n", s.wanted, 100.0 * s.all, s.images, each.join(", "))
    };
    let mut out = line("A−B+C", &c.result);
    for (label, g) in ["A", "B", "C"].iter().zip(&c.groups) {
        out += &line(label, g);
    }
    out + &format!("{}\n→ {}\n", c.protocol, json.display())
}

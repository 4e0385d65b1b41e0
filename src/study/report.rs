//! The study report: for each dataset, each claim of the VAE-vs-GAN table judged in every seed whose
//! runs are all finished (`verdict::judge_claims` on that seed's runs, as `compare` judges one
//! pair), then over seeds: the number each verdict turns on per seed, its mean and 95 % Student-t
//! interval, in how many seeds the claim holds, and **uncertain** where the interval crosses the
//! claim's threshold. Works on a study still running: it reads whatever has finished.

use super::stats::{Interval, Side, interval};
use super::{Study, finished};
use crate::report::{RunReport, read_run, verdict};
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const INTERVAL_METHOD: &str = "mean ± t(0.975, n−1)·s/√n over seeds (Student t, 95 %)";

#[derive(Clone, Debug, Serialize)]
pub struct SeedValue {
    pub seed: u64,
    pub value: Option<f64>,
    pub verdict: String,
    pub provisional: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClaimOverSeeds {
    pub claim: String,
    /// What the per-seed number is ("VAE − GAN FID"); None for a claim that is not a measurement.
    pub stat: Option<String>,
    pub threshold: Option<f64>,
    pub holds_above: Option<bool>,
    pub seeds: Vec<SeedValue>,
    pub interval: Option<Interval>,
    /// Where the interval lies: on the claim's side ("holds"), the other ("does not hold"), or
    /// across the threshold.
    pub interval_says: String,
    /// Seeds in which the claim holds, of those judged.
    pub holds: usize,
    pub judged: usize,
    /// The verdict most seeds give ("split" on a tie).
    pub verdict: String,
    pub uncertain: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct DatasetStudy {
    pub dataset: String,
    pub seeds_planned: usize,
    pub seeds_done: Vec<u64>,
    pub claims: Vec<ClaimOverSeeds>,
    /// The one-seed `compare` report (all pictures of that seed), relative to the study folder.
    pub seed_report: Option<PathBuf>,
    pub seed_shown: Option<u64>,
    /// Samples of the seed shown, per model: (model, PNG path).
    pub samples: Vec<(String, PathBuf)>,
    /// How each model was trained (the recipe line of its first finished run).
    pub recipes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StudyReport {
    pub study: PathBuf,
    pub protocol: String,
    pub interval_method: String,
    pub cells_done: usize,
    pub cells_total: usize,
    pub datasets: Vec<DatasetStudy>,
    pub generated_by: String,
}

/// Aggregate per-seed claim lists (one list per seed, in the same claim order).
pub fn over_seeds(per_seed: &[(u64, Vec<verdict::Claim>)]) -> Vec<ClaimOverSeeds> {
    let Some((_, first)) = per_seed.first() else { return vec![] };
    (0..first.len())
        .map(|i| {
            let rows: Vec<(u64, &verdict::Claim)> =
                per_seed.iter().filter_map(|(s, cs)| Some((*s, cs.get(i)?))).collect();
            let stat = rows.iter().find_map(|(_, c)| c.stat.clone());
            let seeds: Vec<SeedValue> = rows
                .iter()
                .map(|(s, c)| SeedValue {
                    seed: *s,
                    value: c.stat.as_ref().map(|st| st.value),
                    verdict: c.verdict.clone(),
                    provisional: c.provisional,
                })
                .collect();
            let values: Vec<f64> = seeds.iter().filter_map(|s| s.value).collect();
            let iv = interval(&values);
            let judged: Vec<String> =
                seeds.iter().filter(|s| s.verdict != "not measurable").map(|s| s.verdict.clone()).collect();
            let holds = judged.iter().filter(|v| *v == "holds").count();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for v in &judged {
                *counts.entry(v.as_str()).or_default() += 1;
            }
            let top = counts.values().copied().max().unwrap_or(0);
            let leaders: Vec<&str> = counts.iter().filter(|(_, n)| **n == top).map(|(v, _)| *v).collect();
            let verdict = match leaders.as_slice() {
                [] => "not measurable".to_string(),
                [one] => one.to_string(),
                _ => "split".to_string(),
            };
            let (interval_says, uncertain) = match (&stat, &iv) {
                (Some(st), Some(iv)) => match (iv.side(st.threshold), st.holds_above) {
                    (Side::Crosses, _) => ("crosses the threshold".to_string(), true),
                    (Side::Above, true) | (Side::Below, false) => ("holds".to_string(), false),
                    _ => ("does not hold".to_string(), false),
                },
                // A claim without a number (likelihood) is decided by definition in every seed.
                _ => ("—".to_string(), false),
            };
            ClaimOverSeeds {
                claim: first[i].claim.clone(),
                stat: stat.as_ref().map(|s| s.name.clone()),
                threshold: stat.as_ref().map(|s| s.threshold),
                holds_above: stat.as_ref().map(|s| s.holds_above),
                seeds,
                interval: iv,
                interval_says,
                holds,
                judged: judged.len(),
                verdict,
                uncertain,
            }
        })
        .collect()
}

/// Build the report from the finished cells and write `report.html` + `report.json` into the study
/// folder (and the one-seed `compare` page of each dataset under `seed-reports/`).
pub fn build_and_write(study: &Study) -> Result<(StudyReport, PathBuf)> {
    let plan = &study.plan;
    let mut datasets = Vec::new();
    let cells_done = plan.cells.iter().filter(|c| finished(&study.run_path(c))).count();
    for ds in &plan.datasets {
        let mut per_seed = Vec::new();
        let mut seed_runs: Vec<(u64, Vec<RunReport>)> = Vec::new();
        for &seed in &plan.seeds {
            let cells: Vec<_> = plan.cells.iter().filter(|c| &c.dataset == ds && c.seed == seed).collect();
            if !cells.iter().all(|c| finished(&study.run_path(c))) {
                continue;
            }
            let runs: Vec<RunReport> = cells.iter().map(|c| read_run(&study.run_path(c))).collect::<Result<_>>()?;
            per_seed.push((seed, verdict::judge_claims(&runs)));
            seed_runs.push((seed, runs));
        }
        let mut recipes = BTreeMap::new();
        for (_, runs) in &seed_runs {
            for r in runs {
                recipes.entry(r.model.name().to_string()).or_insert_with(|| r.training.recipe.clone());
            }
        }
        // The pictures of one seed: the first finished one (the first planned seed draws the
        // walks and arithmetic too).
        let (mut seed_report, mut seed_shown, mut samples) = (None, None, vec![]);
        if let Some((seed, runs)) = seed_runs.first() {
            let paths: Vec<PathBuf> = runs.iter().map(|r| r.path.clone()).collect();
            let rel = PathBuf::from("seed-reports").join(format!("{}-seed{seed}.html", super::slug(ds)));
            let report = crate::report::build(&paths)?;
            crate::report::write(&report, &study.dir.join(&rel))?;
            seed_report = Some(rel);
            seed_shown = Some(*seed);
            samples = runs
                .iter()
                .map(|r| (r.model.name().to_string(), r.path.join("final/samples.png")))
                .filter(|(_, p)| p.is_file())
                .collect();
        }
        datasets.push(DatasetStudy {
            dataset: ds.clone(),
            seeds_planned: plan.seeds.len(),
            seeds_done: per_seed.iter().map(|(s, _)| *s).collect(),
            claims: over_seeds(&per_seed),
            seed_report,
            seed_shown,
            samples,
            recipes,
        });
    }
    let report = StudyReport {
        study: study.dir.clone(),
        protocol: super::protocol(plan.quick).into(),
        interval_method: INTERVAL_METHOD.into(),
        cells_done,
        cells_total: plan.cells.len(),
        datasets,
        generated_by: format!("latentlab {}", env!("CARGO_PKG_VERSION")),
    };
    let html = study.dir.join("report.html");
    crate::util::write_atomic(&html, render(&report, &study.dir)?.as_bytes())?;
    crate::util::write_atomic(&study.dir.join("report.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok((report, html))
}

fn fmt(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) if x.abs() >= 100.0 => format!("{x:.1}"),
        Some(x) if x.abs() >= 1.0 => format!("{x:.2}"),
        Some(x) => format!("{x:.3}"),
    }
}

/// "holds in 4 of 5 (uncertain)".
pub fn verdict_line(c: &ClaimOverSeeds) -> String {
    if c.judged == 0 {
        return "not measurable".into();
    }
    let mut s = format!("{} — holds in {} of {}", c.verdict, c.holds, c.judged);
    if c.uncertain {
        s.push_str(" — uncertain");
    }
    s
}

/// "−12.3 [−20.1, −4.5]".
pub fn interval_line(c: &ClaimOverSeeds) -> String {
    match &c.interval {
        None => "—".into(),
        Some(iv) => match (iv.lo, iv.hi) {
            (Some(lo), Some(hi)) => format!("{} [{}, {}]", fmt(Some(iv.mean)), fmt(Some(lo)), fmt(Some(hi))),
            _ => format!("{} (one seed)", fmt(Some(iv.mean))),
        },
    }
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>latentlab study: {{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #ccc;padding:.35em .5em;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f3f3f3}.holds{background:#e7f6e7}.not{background:#fbe9e9}.uncertain{background:#fff6d6}
.mono{font-family:ui-monospace,monospace}img{max-width:380px;image-rendering:pixelated;margin-right:1em}
.small{color:#666;font-size:.85em}
</style></head><body>
<h1>VAE or GAN? — a study over seeds</h1>
<p>{{ report.cells_done }} of {{ report.cells_total }} runs finished · protocol <b>{{ report.protocol }}</b> ·
interval: {{ report.interval_method }} · {{ report.generated_by }}</p>
<p class="small">Each seed trains its own VAE and GAN and is judged as <code>compare</code> judges one pair. The number
per seed is what that seed's verdict turns on; a claim is <b>uncertain</b> when the interval of that number crosses
the claim's threshold: more seeds, or more training, could change the verdict. *provisional: that seed's
verdict rests on a run far from trained (see its one-seed report).</p>
{% for d in datasets %}
<h2>{{ d.dataset }} — {{ d.done }} of {{ d.planned }} seeds finished</h2>
{% if d.rows %}
<table><tr><th>claim</th><th>the number (per seed)</th>{% for s in d.seeds %}<th>seed {{ s }}</th>{% endfor %}<th>mean [95 % interval]</th><th>verdict</th></tr>
{% for r in d.rows %}<tr class="{{ r.tone }}"><td>{{ r.claim }}</td><td class="small">{{ r.stat }}</td>
{% for v in r.values %}<td class="mono">{{ v }}</td>{% endfor %}<td class="mono">{{ r.interval }}</td><td>{{ r.verdict }}</td></tr>
{% endfor %}</table>
{% else %}<p>No seed of this dataset has finished all its runs yet.</p>{% endif %}
{% if d.seed_report %}<h3>Seed {{ d.seed_shown }}: samples</h3>
{% for s in d.samples %}<figure style="display:inline-block"><img src="data:image/png;base64,{{ s.png }}" alt="{{ s.model }} samples"><figcaption>{{ s.model }}</figcaption></figure>{% endfor %}
<p>All pictures and numbers of this seed (walks, arithmetic, reconstructions, losses, nearest neighbours):
<a href="{{ d.seed_report }}">{{ d.seed_report }}</a></p>{% endif %}
<h3>Recipe</h3><ul>{% for r in d.recipes %}<li><b>{{ r.0 }}</b>: {{ r.1 }}</li>{% endfor %}</ul>
{% endfor %}
</body></html>
"#;

fn render(report: &StudyReport, dir: &Path) -> Result<String> {
    use base64::Engine;
    let datasets: Vec<serde_json::Value> = report
        .datasets
        .iter()
        .map(|d| {
            let rows: Vec<serde_json::Value> = d
                .claims
                .iter()
                .map(|c| {
                    let values: Vec<String> = d
                        .seeds_done
                        .iter()
                        .map(|s| {
                            c.seeds.iter().find(|v| v.seed == *s).map_or("—".into(), |v| {
                                let mark = if v.provisional { ", provisional*" } else { "" };
                                format!("{} ({}{mark})", fmt(v.value), v.verdict)
                            })
                        })
                        .collect();
                    let tone = if c.uncertain {
                        "uncertain"
                    } else if c.verdict == "holds" {
                        "holds"
                    } else if c.verdict == "does not hold" {
                        "not"
                    } else {
                        ""
                    };
                    let stat = match (&c.stat, c.threshold, c.holds_above) {
                        (Some(n), Some(t), Some(above)) => format!("{n}; holds {} {t}", if above { ">" } else { "<" }),
                        _ => "—".into(),
                    };
                    serde_json::json!({"claim": c.claim, "stat": stat, "values": values,
                        "interval": interval_line(c), "verdict": verdict_line(c), "tone": tone})
                })
                .collect();
            let samples: Vec<serde_json::Value> = d
                .samples
                .iter()
                .filter_map(|(m, p)| {
                    let bytes = std::fs::read(p).ok()?;
                    Some(
                        serde_json::json!({"model": m, "png": base64::engine::general_purpose::STANDARD.encode(bytes)}),
                    )
                })
                .collect();
            serde_json::json!({
                "dataset": d.dataset, "done": d.seeds_done.len(), "planned": d.seeds_planned, "seeds": d.seeds_done,
                "rows": rows, "seed_report": d.seed_report, "seed_shown": d.seed_shown, "samples": samples,
                "recipes": d.recipes.iter().collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.add_template("study.html", PAGE)?;
    Ok(env.get_template("study.html")?.render(minijinja::context! {
        title => dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
        report => report,
        datasets => datasets,
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict::{Claim, Stat};

    fn claim(name: &str, value: Option<f64>, verdict: &str) -> Claim {
        Claim {
            claim: name.into(),
            vae: String::new(),
            gan: String::new(),
            verdict: verdict.into(),
            reason: String::new(),
            provisional: false,
            stat: value.map(|value| Stat { name: "VAE − GAN FID".into(), value, threshold: 0.0, holds_above: true }),
        }
    }

    #[test]
    fn claims_over_seeds_count_verdicts_and_flag_intervals_that_cross() {
        // FID differences 10, 12, 14 (holds in all three, interval above 0) and −5, 1, 20 (holds in
        // two, interval crosses 0: uncertain).
        let per_seed: Vec<(u64, Vec<Claim>)> = [(10.0, -5.0), (12.0, 1.0), (14.0, 20.0)]
            .iter()
            .enumerate()
            .map(|(s, &(a, b))| {
                let vb = if b > 0.0 { "holds" } else { "does not hold" };
                (s as u64, vec![claim("a", Some(a), "holds"), claim("b", Some(b), vb), claim("l", None, "holds")])
            })
            .collect();
        let out = over_seeds(&per_seed);
        let (a, b, l) = (&out[0], &out[1], &out[2]);
        assert_eq!((a.holds, a.judged, a.verdict.as_str(), a.uncertain), (3, 3, "holds", false));
        assert_eq!(a.interval_says, "holds");
        // 12 ± 4.303 × 2 / √3
        let iv = a.interval.as_ref().unwrap();
        assert!((iv.lo.unwrap() - (12.0 - 4.303 * 2.0 / 3f64.sqrt())).abs() < 1e-3, "{iv:?}");
        assert_eq!((b.holds, b.verdict.as_str(), b.uncertain), (2, "holds", true));
        assert_eq!(verdict_line(b), "holds — holds in 2 of 3 — uncertain");
        assert_eq!((l.holds, l.uncertain, l.stat.as_deref()), (3, false, None));
    }
}

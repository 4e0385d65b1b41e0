//! Render the report as one self-contained HTML page: pictures inlined as data URIs, no network
//! needed to view or print it. The page layout lives in `report.html` (a minijinja template).

use super::Report;
use anyhow::{Context, Result};
use base64::Engine;
use minijinja::{Environment, context};
use serde::Serialize;

const TEMPLATE: &str = include_str!("report.html");

#[derive(Serialize)]
struct Img {
    title: String,
    src: String,
}

#[derive(Serialize)]
struct RunImages {
    name: String,
    images: Vec<Img>,
}

pub fn render(report: &Report) -> Result<String> {
    let mut images = Vec::new();
    for r in &report.runs {
        let mut imgs = Vec::new();
        for p in &r.pictures {
            let bytes = std::fs::read(&p.path).with_context(|| format!("cannot read picture {}", p.path.display()))?;
            imgs.push(Img {
                title: p.title.clone(),
                src: format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes)),
            });
        }
        images.push(RunImages { name: r.name.clone(), images: imgs });
    }
    let protocols: Vec<String> =
        report.runs.iter().map(|r| serde_json::to_string_pretty(&r.eval.protocol).unwrap_or_default()).collect();
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE).context("report template")?;
    let page = env
        .get_template("report.html")?
        .render(context! { report => report, images => images, protocols => protocols })
        .context("rendering the report")?;
    Ok(page)
}

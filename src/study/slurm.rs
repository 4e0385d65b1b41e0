//! The Slurm launcher: one job array per model (its resources differ), each array task running
//! `latentlab study cell <study> --index $SLURM_ARRAY_TASK_ID` on the shared file system; Slurm's
//! view of the tasks (`squeue --states=all`, which keeps finished tasks for `MinJobAge`) merged
//! with what the study folder says. Tasks write only into their own cell and run folders.

use super::{Cell, CellState, Study};
use crate::models::{Family, ModelKind};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One `sbatch` of the study.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    pub job_id: String,
    pub model: ModelKind,
    pub cells: Vec<usize>,
    pub script: PathBuf,
    pub submitted: String,
}

/// Resources of a task, per model and protocol; flags override them.
#[derive(Clone, Debug)]
pub struct Resources {
    pub partition: Option<String>,
    pub cpus: usize,
    pub mem: String,
    pub time: String,
}

impl Resources {
    /// Time limits with room to spare on a 2-core node (the quick protocol's cells take minutes,
    /// the full protocol's VAE ~5 min, DCGAN ~15 min on MNIST; faces 3×), memory from the measured
    /// peaks (< 1 GB for 28×28, < 2 GB for faces) with headroom for evaluation.
    pub fn default_for(model: ModelKind, quick: bool, faces: bool) -> (String, String) {
        let gan = model.family() == Family::Adversarial;
        let minutes = match (quick, gan) {
            (true, false) => 30,
            (true, true) => 45,
            (false, false) => 90,
            (false, true) => 180,
        } * if faces { 3 } else { 1 };
        (format!("{}:{:02}:00", minutes / 60, minutes % 60), if faces { "8G".into() } else { "4G".into() })
    }
}

pub fn jobs_path(study: &Study) -> PathBuf {
    study.dir.join("slurm/jobs.json")
}

pub fn submissions(study: &Study) -> Result<Vec<Submission>> {
    let p = jobs_path(study);
    if !p.exists() {
        return Ok(vec![]);
    }
    serde_json::from_slice(&std::fs::read(&p)?).with_context(|| format!("{} is not a valid job list", p.display()))
}

fn sh_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// The job-array script of `cells` (all of one model).
pub fn script(study_abs: &Path, exe: &Path, model: ModelKind, cells: &[usize], r: &Resources) -> String {
    let list: Vec<String> = cells.iter().map(|i| i.to_string()).collect();
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name=latentlab-{}\n", model.name());
    s += &format!("#SBATCH --array={}\n", list.join(","));
    s += &format!("#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n#SBATCH --time={}\n", r.cpus, r.mem, r.time);
    if let Some(p) = &r.partition {
        s += &format!("#SBATCH --partition={p}\n");
    }
    // Each task logs into its own cell folder (%a is the cell index, %A the array's job id).
    s += &format!("#SBATCH --output={}/cells/%a/slurm-%A.out\n", study_abs.display());
    // SIGINT two minutes before the time limit: training saves a checkpoint and stops cleanly, so
    // the next `study` resumes the cell instead of repeating it.
    s += "#SBATCH --signal=B:INT@120\n";
    s += &format!("export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{}}}\"\n", r.cpus);
    s += &format!("exec {} study cell {} --index \"$SLURM_ARRAY_TASK_ID\"\n", sh_quote(exe), sh_quote(study_abs));
    s
}

/// Submit the cells that need running as one array per model; returns the new submissions
/// (already recorded in `slurm/jobs.json`).
pub fn submit(
    study: &Study,
    cells: &[&Cell],
    base: &Resources,
    time: Option<&str>,
    mem: Option<&str>,
) -> Result<Vec<Submission>> {
    let study_abs = std::fs::canonicalize(&study.dir)?;
    let exe = std::env::current_exe().context("cannot find the latentlab executable to submit")?;
    let faces =
        study.plan.image_size.is_some() || study.plan.datasets.iter().any(|d| d.to_lowercase().contains("celeba"));
    let mut by_model: BTreeMap<&str, (ModelKind, Vec<usize>)> = BTreeMap::new();
    for c in cells {
        by_model.entry(c.model.name()).or_insert((c.model, vec![])).1.push(c.index);
        // Slurm does not create the folder of --output.
        std::fs::create_dir_all(study.cell_dir(c))?;
    }
    std::fs::create_dir_all(study.dir.join("slurm"))?;
    let all = submissions(study)?;
    let mut new = Vec::new();
    for (name, (model, idx)) in by_model {
        let (t, m) = Resources::default_for(model, study.plan.quick, faces);
        let r = Resources { time: time.map_or(t, str::to_string), mem: mem.map_or(m, str::to_string), ..base.clone() };
        let path = study_abs.join(format!("slurm/{name}-{}.sh", all.len() + new.len()));
        crate::util::write_atomic(&path, script(&study_abs, &exe, model, &idx, &r).as_bytes())?;
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(&path)
            .current_dir(&study_abs)
            .output()
            .context("cannot run sbatch (is Slurm installed and on PATH?)")?;
        if !out.status.success() {
            bail!("sbatch {} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        // "<id>" or "<id>;<cluster>".
        let text = String::from_utf8_lossy(&out.stdout);
        let job_id = text.trim().split(';').next().unwrap_or("").to_string();
        if job_id.is_empty() || !job_id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch {} answered {:?}, not a job id", path.display(), text.trim());
        }
        let s = Submission {
            job_id,
            model,
            cells: idx,
            script: path,
            submitted: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        };
        new.push(s.clone());
        // Recorded after each sbatch: a failure later still leaves the submitted arrays known.
        let recorded: Vec<&Submission> = all.iter().chain(&new).collect();
        crate::util::write_atomic(&jobs_path(study), serde_json::to_string_pretty(&recorded)?.as_bytes())?;
    }
    Ok(new)
}

/// Slurm's state of each array task of the study's submissions, by "<job>_<index>".
pub fn task_states(subs: &[Submission]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for s in subs {
        // One query per array: an id Slurm has forgotten fails the whole query.
        let Ok(o) = Command::new("squeue").args(["-h", "-r", "--states=all", "-j", &s.job_id, "-o", "%i %T"]).output()
        else {
            continue;
        };
        if o.status.success() {
            out.extend(parse_squeue(&String::from_utf8_lossy(&o.stdout)));
        }
    }
    out
}

/// `squeue -h -r -o '%i %T'` lines: "12_3 RUNNING".
pub fn parse_squeue(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// The cell's last submission and Slurm's state of its task (None: Slurm no longer knows it).
pub fn cell_task<'a>(
    cell: &Cell,
    subs: &'a [Submission],
    states: &BTreeMap<String, String>,
) -> Option<(&'a Submission, Option<String>)> {
    let s = subs.iter().rev().find(|s| s.cells.contains(&cell.index))?;
    Some((s, states.get(&format!("{}_{}", s.job_id, cell.index)).cloned()))
}

/// The Slurm log of a cell's task.
pub fn log_path(study: &Study, cell: &Cell, job_id: &str) -> PathBuf {
    study.cell_dir(cell).join(format!("slurm-{job_id}.out"))
}

/// A cell's state with Slurm's view merged in: queued and running come from Slurm; a task that
/// Slurm ended (cancelled, out of time or memory, failed) without the cell being done is failed,
/// with Slurm's state and the log's tail.
pub fn merged_state(study: &Study, cell: &Cell, task: Option<(&Submission, Option<String>)>) -> CellState {
    let local = study.local_state(cell);
    if local == CellState::Done {
        return local;
    }
    let Some((sub, Some(state))) = task else { return local };
    match state.as_str() {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" | "SUSPENDED" => {
            CellState::Queued
        }
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" => CellState::Running,
        "COMPLETED" => local,
        other => {
            let tail = super::tail(&log_path(study, cell, &sub.job_id), 3);
            let why = match study.record(cell).and_then(|r| r.error) {
                Some(e) if other == "FAILED" => e,
                _ => tail.lines().last().unwrap_or("no log").trim().to_string(),
            };
            CellState::Failed(format!("Slurm {other} (task {}_{}): {why}", sub.job_id, cell.index))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_and_the_script_names_cells_and_resources() {
        let m = parse_squeue("7_2 PENDING\n7_0 RUNNING\n\n7_1 CANCELLED\n");
        assert_eq!(m.get("7_0").map(String::as_str), Some("RUNNING"));
        assert_eq!(m.get("7_1").map(String::as_str), Some("CANCELLED"));
        assert_eq!(m.len(), 3);
        let r = Resources { partition: Some("gpu".into()), cpus: 4, mem: "8G".into(), time: "1:30:00".into() };
        let s = script(Path::new("/s/it's"), Path::new("/bin/latentlab"), ModelKind::Vae, &[0, 2, 5], &r);
        for want in [
            "#SBATCH --array=0,2,5\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --cpus-per-task=4\n",
            "#SBATCH --time=1:30:00\n",
            "#SBATCH --output=/s/it's/cells/%a/slurm-%A.out\n",
            "exec '/bin/latentlab' study cell '/s/it'\\''s' --index \"$SLURM_ARRAY_TASK_ID\"\n",
        ] {
            assert!(s.contains(want), "{want:?} missing from\n{s}");
        }
        assert_eq!(Resources::default_for(ModelKind::Dcgan, true, false), ("0:45:00".into(), "4G".into()));
        assert_eq!(Resources::default_for(ModelKind::Vae, false, true), ("4:30:00".into(), "8G".into()));
    }
}

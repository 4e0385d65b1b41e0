//! A study: `compare`'s protocol over datasets × models × seeds. It is a folder: `plan.json`
//! (written before anything runs), one ordinary run folder per cell under `runs/` (resume, eval and
//! explore work on each), a record per cell under `cells/<index>/` (attempts, outcome, log, the cell
//! lock), `slurm/` when Slurm runs it, and the report. Every command on a study reads the folder
//! again, so it can be rerun, inspected or reported at any time and from any machine that sees it.

pub mod report;
pub mod slurm;
pub mod stats;

use crate::artifacts::Summary;
use crate::models::ModelKind;
use crate::run::RunDir;
use crate::run::dataset_slug as slug;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The design of a study; a rerun must ask for the same one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub datasets: Vec<String>,
    pub models: Vec<ModelKind>,
    pub seeds: Vec<u64>,
    /// `compare --quick`'s protocol (short training, lighter evaluation) instead of the full one.
    pub quick: bool,
    pub image_size: Option<usize>,
    pub data_dir: Option<PathBuf>,
    /// A cap on every run's updates (a smoke test of the study itself); None: the protocol's.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Where the runs train and are evaluated: results differ across devices, so it is part of
    /// the design (studies from before it have the CPU).
    #[serde(default)]
    pub device: crate::backend::DeviceChoice,
    pub cells: Vec<Cell>,
    pub latentlab_version: String,
    pub created: String,
}

/// One run of the study.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub index: usize,
    pub dataset: String,
    pub model: ModelKind,
    pub seed: u64,
    /// The run folder, relative to the study folder.
    pub run: PathBuf,
}

impl Cell {
    pub fn label(&self) -> String {
        format!("{} {} seed {}", self.dataset, self.model.name(), self.seed)
    }
}

impl Plan {
    pub fn new(
        datasets: Vec<String>,
        models: Vec<ModelKind>,
        seeds: Vec<u64>,
        quick: bool,
        image_size: Option<usize>,
        data_dir: Option<PathBuf>,
        max_steps: Option<u64>,
    ) -> Plan {
        let mut cells = Vec::new();
        for ds in &datasets {
            for &seed in &seeds {
                for &model in &models {
                    let run = PathBuf::from("runs").join(slug(ds)).join(format!("{}-seed{seed}", model.name()));
                    cells.push(Cell { index: cells.len(), dataset: ds.clone(), model, seed, run });
                }
            }
        }
        Plan {
            datasets,
            models,
            seeds,
            quick,
            image_size,
            data_dir,
            max_steps,
            device: crate::backend::DeviceChoice::Cpu,
            cells,
            latentlab_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        }
    }

    /// The default folder of a design: the same command names the same study, so rerunning it
    /// continues it.
    pub fn default_dir(&self) -> PathBuf {
        let ds: Vec<String> = self.datasets.iter().map(|d| slug(d)).collect();
        let mut name = format!("{}-{}seeds", ds.join("+"), self.seeds.len());
        if self.quick {
            name.push_str("-quick");
        }
        PathBuf::from("studies").join(name)
    }

    /// Whether `other` asks for the same study (what it would run), naming the first difference.
    pub fn check_same(&self, other: &Plan, dir: &Path) -> Result<()> {
        let diffs = [
            ("datasets", format!("{:?}", self.datasets), format!("{:?}", other.datasets)),
            ("models", format!("{:?}", self.models), format!("{:?}", other.models)),
            ("seeds", format!("{:?}", self.seeds), format!("{:?}", other.seeds)),
            ("protocol", protocol(self.quick).into(), protocol(other.quick).into()),
            ("--image-size", format!("{:?}", self.image_size), format!("{:?}", other.image_size)),
            ("--max-steps", format!("{:?}", self.max_steps), format!("{:?}", other.max_steps)),
        ];
        for (what, planned, asked) in diffs {
            if planned != asked {
                bail!(
                    "{} holds a study planned with {what} {planned}; this asks for {asked}: give another --out, or \
                     the same options to continue it",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

pub fn protocol(quick: bool) -> &'static str {
    if quick { "quick" } else { "full" }
}

/// A study folder and its plan.
pub struct Study {
    pub dir: PathBuf,
    pub plan: Plan,
}

impl Study {
    pub fn plan_path(dir: &Path) -> PathBuf {
        dir.join("plan.json")
    }

    /// Create the folder and write the plan, or open the study already there (which must be the
    /// same design).
    pub fn create_or_continue(dir: &Path, plan: Plan) -> Result<Study> {
        if Study::plan_path(dir).exists() {
            let s = Study::open(dir)?;
            s.plan.check_same(&plan, dir)?;
            return Ok(s);
        }
        std::fs::create_dir_all(dir.join("cells"))
            .with_context(|| format!("cannot create study folder {}", dir.display()))?;
        crate::util::write_atomic(&Study::plan_path(dir), serde_json::to_string_pretty(&plan)?.as_bytes())?;
        Ok(Study { dir: dir.to_path_buf(), plan })
    }

    pub fn open(dir: &Path) -> Result<Study> {
        let p = Study::plan_path(dir);
        let text = std::fs::read_to_string(&p)
            .with_context(|| format!("{} is not a study folder (no readable plan.json)", dir.display()))?;
        let plan: Plan = serde_json::from_str(&text).with_context(|| format!("{} is not a valid plan", p.display()))?;
        for (i, c) in plan.cells.iter().enumerate() {
            if c.index != i || c.run.is_absolute() || c.run.components().any(|p| p == std::path::Component::ParentDir) {
                bail!("{}: cell {i} is malformed (index {}, run {})", p.display(), c.index, c.run.display());
            }
        }
        Ok(Study { dir: dir.to_path_buf(), plan })
    }

    pub fn cell(&self, index: usize) -> Result<&Cell> {
        self.plan.cells.get(index).with_context(|| {
            format!("{} has cells 0–{}; there is no cell {index}", self.dir.display(), self.plan.cells.len() - 1)
        })
    }

    pub fn run_path(&self, cell: &Cell) -> PathBuf {
        self.dir.join(&cell.run)
    }

    pub fn cell_dir(&self, cell: &Cell) -> PathBuf {
        self.dir.join("cells").join(cell.index.to_string())
    }

    pub fn record_path(&self, cell: &Cell) -> PathBuf {
        self.cell_dir(cell).join("record.json")
    }

    pub fn log_path(&self, cell: &Cell) -> PathBuf {
        self.cell_dir(cell).join("log.txt")
    }

    pub fn record(&self, cell: &Cell) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(self.record_path(cell)).ok()?).ok()
    }

    /// What the folder says about a cell (Slurm's view is added by `slurm::states`).
    pub fn local_state(&self, cell: &Cell) -> CellState {
        let run = self.run_path(cell);
        if finished(&run) {
            return CellState::Done;
        }
        if crate::run::lock::holder(&self.cell_dir(cell)).is_some() {
            return CellState::Running;
        }
        match self.record(cell) {
            Some(r) if r.outcome == Outcome::Failed => {
                CellState::Failed(r.error.unwrap_or_else(|| "failed (no message)".into()))
            }
            Some(r) if r.outcome == Outcome::Running => CellState::Interrupted,
            _ if RunDir::at(&run).config().is_file() => CellState::Interrupted,
            _ => CellState::Pending,
        }
    }
}

/// A cell is finished when its run is (its summary, written last, says so) and it is evaluated.
pub fn finished(run: &Path) -> bool {
    let dir = RunDir::at(run);
    Summary::load(&dir.summary()).is_ok_and(|s| s.status.finished()) && dir.eval().is_file()
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Running,
    Done,
    Failed,
}

/// What the last process that worked on a cell left: how many attempts, and how the last ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub attempts: u32,
    /// Attempts that ended in an error (interruptions and kills are not failures).
    #[serde(default)]
    pub failures: u32,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub host: String,
    pub pid: u32,
    pub slurm_job: Option<String>,
    pub started: String,
    pub ended: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "detail", rename_all = "kebab-case")]
pub enum CellState {
    Done,
    Running,
    /// Waiting in Slurm's queue.
    Queued,
    /// Started, stopped before the end, no process on it: `study` resumes it from its checkpoint.
    Interrupted,
    Failed(String),
    Pending,
}

impl CellState {
    pub fn name(&self) -> &'static str {
        match self {
            CellState::Done => "done",
            CellState::Running => "running",
            CellState::Queued => "queued",
            CellState::Interrupted => "interrupted",
            CellState::Failed(_) => "failed",
            CellState::Pending => "pending",
        }
    }
    /// Whether `study` should (re)start this cell now.
    pub fn to_launch(&self) -> bool {
        matches!(self, CellState::Interrupted | CellState::Failed(_) | CellState::Pending)
    }
}

impl Study {
    /// Whether a cell in `state` is (re)started by `study`: not done, not running or queued, and
    /// not failed more than `retries` times.
    pub fn should_launch(&self, cell: &Cell, state: &CellState, retries: u32) -> bool {
        state.to_launch() && self.record(cell).is_none_or(|r| r.failures <= retries)
    }
}

fn now() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Run one cell to its end: train (or resume, or finish) its run by the study's protocol, evaluate
/// it, and for the first seed draw the pictures the report shows. Holds the cell lock throughout,
/// so two launchers can never work on one cell at once; the record says how it ended.
pub fn run_cell(study: &Study, index: usize) -> Result<()> {
    let cell = study.cell(index)?.clone();
    let cell_dir = study.cell_dir(&cell);
    std::fs::create_dir_all(&cell_dir).with_context(|| format!("cannot create {}", cell_dir.display()))?;
    let _lock = crate::run::RunLock::acquire(&cell_dir)
        .with_context(|| format!("cell {index} ({}) is already being run", cell.label()))?;
    let before = study.record(&cell);
    let mut record = Record {
        attempts: before.as_ref().map_or(0, |r| r.attempts) + 1,
        failures: before.as_ref().map_or(0, |r| r.failures),
        outcome: Outcome::Running,
        error: None,
        host: hostname(),
        pid: std::process::id(),
        slurm_job: std::env::var("SLURM_ARRAY_JOB_ID")
            .ok()
            .map(|j| format!("{j}_{}", std::env::var("SLURM_ARRAY_TASK_ID").unwrap_or_default())),
        started: now(),
        ended: None,
    };
    let save = |r: &Record| crate::util::write_atomic(&study.record_path(&cell), &serde_json::to_vec_pretty(r)?);
    save(&record)?;
    eprintln!("cell {index}: {} → {} (attempt {})", cell.label(), study.run_path(&cell).display(), record.attempts);
    let result = work(study, &cell);
    record.ended = Some(now());
    match &result {
        Ok(()) => record.outcome = Outcome::Done,
        // Ctrl-C / scancel's SIGINT saved a checkpoint: interrupted, not failed.
        Err(e) if e.downcast_ref::<crate::train::Interrupted>().is_some() => {}
        Err(e) => {
            (record.outcome, record.error) = (Outcome::Failed, Some(format!("{e:#}")));
            record.failures += 1;
        }
    }
    save(&record)?;
    result
}

fn work(study: &Study, cell: &Cell) -> Result<()> {
    let plan = &study.plan;
    let run = study.run_path(cell);
    let given = crate::config::Options {
        dataset: Some(cell.dataset.clone()),
        data_dir: plan.data_dir.clone(),
        image_size: plan.image_size,
        seed: Some(cell.seed),
        max_steps: plan.max_steps,
        device: Some(plan.device),
        ..Default::default()
    };
    crate::app::compare::ensure_trained(cell.model, &run, given, plan.quick)?;
    if !RunDir::at(&run).eval().is_file() {
        crate::app::compare::evaluate_run(&run, plan.data_dir.clone(), cell.seed, plan.quick, plan.device)?;
    }
    if plan.seeds.first() == Some(&cell.seed) {
        crate::app::compare::ensure_pictures(&run, plan.data_dir.clone(), plan.device)?;
    }
    Ok(())
}

/// How far a run's training is: "step 1200 of 3500" (its last logged step and its step limit).
pub fn progress(run: &Path) -> Option<String> {
    let (dir, cfg) = RunDir::open(run).ok()?;
    let step = crate::train::log::read(&dir.metrics()).ok()?.iter().rev().find_map(|v| v["step"].as_u64())?;
    Some(match cfg.max_steps {
        Some(m) => format!("step {step} of {m}"),
        None => format!("step {step}"),
    })
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).to_string()).unwrap_or_default();
    // Progress bars redraw with \r: keep what the last redraw showed.
    let lines: Vec<&str> = text.lines().map(|l| l.rsplit('\r').next().unwrap_or(l)).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

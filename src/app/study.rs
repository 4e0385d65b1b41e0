//! `latentlab study`: plan a study, run its cells here (a pool of processes) or submit them to
//! Slurm as job arrays, report its state and its verdicts over seeds (`crate::study`).

use crate::models::ModelKind;
use crate::study::report::{StudyReport, build_and_write};
use crate::study::slurm::{self, Resources};
use crate::study::{CellState, Plan, Study};
use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct StudyArgs {
    #[command(subcommand)]
    pub command: Option<StudyCommand>,
    #[command(flatten)]
    pub run: StudyRequest,
}

#[derive(Subcommand, Debug)]
pub enum StudyCommand {
    /// Which runs of a study are done, running, queued or failed (with Slurm's state and the log).
    Status { study: PathBuf },
    /// Write the study's report (report.html, report.json) from the runs that have finished.
    Report { study: PathBuf },
    /// Run one cell of a study (what each local process and each Slurm array task runs).
    #[command(hide = true)]
    Cell {
        study: PathBuf,
        #[arg(long)]
        index: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Launcher {
    /// A pool of processes on this machine.
    Local,
    /// Job arrays submitted with sbatch; returns at once.
    Slurm,
}

#[derive(Args, Debug, Clone)]
pub struct StudyRequest {
    /// Datasets to study (each gets every model × seed).
    #[arg(long, num_args = 1..)]
    pub dataset: Vec<String>,
    /// Seeds per model: 0, 1, …, N−1.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Models of each seed [default: the compare pair, vae and dcgan].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub models: Vec<ModelKind>,
    /// `compare --quick`'s protocol (minutes per run) instead of the full one.
    #[arg(long)]
    pub quick: bool,
    /// Study folder [default: studies/<datasets>-<N>seeds[-quick]; the same command continues it].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Image folders and CelebA: side of the square images.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Cap every run at this many updates (a smoke test of the study, not a result).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Where every run trains and is evaluated (with Slurm, on the node each task gets: ask for
    /// GPU nodes with --partition).
    #[arg(long, value_enum, default_value_t = crate::backend::DeviceChoice::Cpu)]
    pub device: crate::backend::DeviceChoice,
    #[arg(long, value_enum, default_value = "local")]
    pub launcher: Launcher,
    /// Local launcher: runs at once [default: one per 2 cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Times a run that failed (ended in an error) is started again, over all invocations;
    /// interrupted and killed runs are always continued.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Slurm: partition to submit to [default: the cluster's default].
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm: CPUs per task.
    #[arg(long)]
    pub cpus: Option<usize>,
    /// Slurm: time limit per task, e.g. 2:00:00 [default: by model and protocol].
    #[arg(long)]
    pub time: Option<String>,
    /// Slurm: memory per task, e.g. 4G [default: by model and data].
    #[arg(long)]
    pub mem: Option<String>,
}

/// What a `study` invocation did.
pub enum Launched {
    /// The local launcher ran every cell it could; the report is written.
    Ran { report: StudyReport, html: PathBuf, failed: Vec<String>, seconds: f64 },
    /// Submitted to Slurm (nothing to submit: empty).
    Submitted { dir: PathBuf, submissions: Vec<slurm::Submission> },
}

pub fn study(a: StudyRequest) -> Result<Launched> {
    if a.dataset.is_empty() {
        bail!("give --dataset NAME… to study (or `study status|report <folder>`)");
    }
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if a.launcher == Launcher::Local {
        for (flag, given) in [
            ("--partition", a.partition.is_some()),
            ("--cpus", a.cpus.is_some()),
            ("--time", a.time.is_some()),
            ("--mem", a.mem.is_some()),
        ] {
            if given {
                bail!("{flag} is a Slurm resource: it applies to --launcher slurm");
            }
        }
    } else if a.jobs.is_some() {
        bail!("--jobs is for --launcher local (Slurm decides how many tasks run at once)");
    }
    if a.jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let models = if a.models.is_empty() { vec![ModelKind::Vae, ModelKind::Dcgan] } else { a.models.clone() };
    let mut plan = Plan::new(
        a.dataset.clone(),
        models,
        (0..a.seeds).collect(),
        a.quick,
        a.image_size,
        a.data_dir.clone(),
        a.max_steps,
    );
    plan.device = a.device;
    let dir = a.out.clone().unwrap_or_else(|| plan.default_dir());
    let study = Study::create_or_continue(&dir, plan)?;
    match a.launcher {
        Launcher::Local => run_local(&study, a.jobs, a.retries),
        Launcher::Slurm => {
            let subs = slurm::submissions(&study)?;
            let states = slurm::task_states(&subs);
            let todo: Vec<&crate::study::Cell> = study
                .plan
                .cells
                .iter()
                .filter(|c| {
                    let state = slurm::merged_state(&study, c, slurm::cell_task(c, &subs, &states));
                    let go = study.should_launch(c, &state, a.retries);
                    if !go && state.to_launch() {
                        eprintln!("{}: failed more than --retries {} times; not resubmitted", c.label(), a.retries);
                    }
                    go
                })
                .collect();
            let submissions = if todo.is_empty() {
                vec![]
            } else {
                let base = Resources {
                    partition: a.partition.clone(),
                    cpus: a.cpus.unwrap_or(2),
                    mem: String::new(),
                    time: String::new(),
                };
                slurm::submit(&study, &todo, &base, a.time.as_deref(), a.mem.as_deref())?
            };
            Ok(Launched::Submitted { dir, submissions })
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Run every unfinished cell with a pool of `jobs` processes (each with its share of the cores),
/// retrying a failed one `retries` times; Ctrl-C stops the pool after the running cells have
/// saved their checkpoints (they receive the same SIGINT).
fn run_local(study: &Study, jobs: Option<usize>, retries: u32) -> Result<Launched> {
    let t0 = Instant::now();
    crate::util::install_interrupt_handler();
    let jobs = jobs.unwrap_or((cores() / 2).max(1));
    let threads = (cores() / jobs).max(1);
    let exe = std::env::current_exe()?;
    let cells = &study.plan.cells;
    let mut gave_up = Vec::new();
    let mut queue: std::collections::VecDeque<(usize, u32)> = cells
        .iter()
        .filter(|c| {
            let s = study.local_state(c);
            if s == CellState::Running {
                eprintln!("{}: being run by another process; skipped", c.label());
            }
            let go = study.should_launch(c, &s, retries);
            if !go && s.to_launch() {
                gave_up.push(format!(
                    "{}: failed more than --retries {retries} times: {}",
                    c.label(),
                    last_line(study, c)
                ));
            }
            go
        })
        .map(|c| (c.index, 0))
        .collect();
    let total = queue.len();
    eprintln!(
        "study {}: {} of {} runs to do, {jobs} at a time ({threads} threads each)",
        study.dir.display(),
        total,
        cells.len()
    );
    let mut running: Vec<(usize, u32, Child, Instant)> = Vec::new();
    let mut failed = gave_up;
    // Seconds per finished run, by model: the estimate of what is left.
    let mut took: std::collections::HashMap<ModelKind, (f64, u32)> = Default::default();
    let mut finished = 0;
    let interrupted = || crate::util::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst);
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs && !interrupted() {
            let Some((i, tries)) = queue.pop_front() else { break };
            let cell = &cells[i];
            std::fs::create_dir_all(study.cell_dir(cell))?;
            let log = std::fs::OpenOptions::new().create(true).append(true).open(study.log_path(cell))?;
            let child = Command::new(&exe)
                .args(["study", "cell"])
                .arg(&study.dir)
                .args(["--index", &i.to_string()])
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            eprintln!("started {} (log {})", cell.label(), study.log_path(cell).display());
            running.push((i, tries, child, Instant::now()));
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut still = Vec::new();
        for (i, tries, mut child, started) in running {
            let Some(status) = child.try_wait()? else {
                still.push((i, tries, child, started));
                continue;
            };
            let cell = &cells[i];
            let secs = started.elapsed().as_secs_f64();
            if status.success() {
                finished += 1;
                let per = took.entry(cell.model).or_insert((0.0, 0));
                (per.0, per.1) = (per.0 + secs, per.1 + 1);
                eprintln!(
                    "[{finished}/{total}] {} done ({secs:.0} s){}",
                    cell.label(),
                    eta(&took, &queue, cells, jobs)
                );
            } else if interrupted() {
                eprintln!("{} stopped by Ctrl-C; the next `study` resumes it", cell.label());
            } else if tries < retries && study.should_launch(cell, &study.local_state(cell), retries) {
                eprintln!("{} failed ({status}); retrying: {}", cell.label(), last_line(study, cell));
                queue.push_back((i, tries + 1));
            } else {
                let why = format!("{}: {}", cell.label(), last_line(study, cell));
                eprintln!("failed: {why}");
                failed.push(why);
            }
        }
        running = still;
        if interrupted() && running.is_empty() {
            break;
        }
    }
    if interrupted() {
        return Err(crate::train::Interrupted(format!(
            "study interrupted: finished runs are kept, started ones saved their checkpoints; continue with the same \
             `latentlab study` command or look with `latentlab study status {}`",
            study.dir.display()
        ))
        .into());
    }
    let (report, html) = build_and_write(study)?;
    Ok(Launched::Ran { report, html, failed, seconds: t0.elapsed().as_secs_f64() })
}

/// "; about 25 min left" from the mean time of each model's finished runs (queued runs of a model
/// with none finished yet are not counted: the estimate says so).
fn eta(
    took: &std::collections::HashMap<ModelKind, (f64, u32)>,
    queue: &std::collections::VecDeque<(usize, u32)>,
    cells: &[crate::study::Cell],
    jobs: usize,
) -> String {
    let (mut secs, mut unknown) = (0.0, 0);
    for (i, _) in queue {
        match took.get(&cells[*i].model) {
            Some((t, n)) => secs += t / *n as f64,
            None => unknown += 1,
        }
    }
    if queue.is_empty() {
        return String::new();
    }
    let more = if unknown > 0 { format!(" + {unknown} run(s) of models not timed yet") } else { String::new() };
    format!("; about {:.0} min left at this pace{more}", secs / jobs as f64 / 60.0)
}

fn last_line(study: &Study, cell: &crate::study::Cell) -> String {
    match study.record(cell).and_then(|r| r.error) {
        Some(e) => e,
        None => crate::study::tail(&study.log_path(cell), 1),
    }
}

/// One row of `study status`.
pub struct CellStatus {
    pub cell: crate::study::Cell,
    pub state: CellState,
    pub attempts: u32,
    pub slurm_task: Option<String>,
    pub log: PathBuf,
    pub run: PathBuf,
}

pub fn status(dir: &Path) -> Result<Vec<CellStatus>> {
    let study = Study::open(dir)?;
    let subs = slurm::submissions(&study)?;
    let states = slurm::task_states(&subs);
    Ok(study
        .plan
        .cells
        .iter()
        .map(|c| {
            let task = slurm::cell_task(c, &subs, &states);
            let slurm_task = task.as_ref().map(|(s, st)| {
                format!("{}_{} {}", s.job_id, c.index, st.clone().unwrap_or_else(|| "(gone from Slurm)".into()))
            });
            let log = match &task {
                Some((s, _)) => slurm::log_path(&study, c, &s.job_id),
                None => study.log_path(c),
            };
            CellStatus {
                cell: c.clone(),
                state: slurm::merged_state(&study, c, task),
                attempts: study.record(c).map_or(0, |r| r.attempts),
                slurm_task,
                log,
                run: study.run_path(c),
            }
        })
        .collect())
}

pub fn report(dir: &Path) -> Result<(StudyReport, PathBuf)> {
    build_and_write(&Study::open(dir)?)
}

pub fn cell(dir: &Path, index: usize) -> Result<()> {
    crate::study::run_cell(&Study::open(dir)?, index)
}

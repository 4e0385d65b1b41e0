//! `latentlab study`: a local study whose every run is SIGKILLed in its final phase, then finished
//! by rerunning it, with the report's per-seed numbers and intervals checked against the runs'
//! own eval.json; bad input named; and a study through a real Slurm (job arrays, status while
//! running, a task killed with scancel shown as failed and resubmitted, the report).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SMOKE: [&str; 9] = ["--dataset", "digits", "--seeds", "2", "--quick", "--max-steps", "40", "--out", "S"];

fn run(args: &[&str], cwd: &Path, fault: Option<&str>) -> (bool, String, String) {
    let mut c = Command::new(bin());
    c.args(args).current_dir(cwd).env("LATENTLAB_DATA", shared_data()).env_remove("LATENTLAB_FAULT");
    if let Some(f) = fault {
        c.env("LATENTLAB_FAULT", f);
    }
    let out = c.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `study status` rows: cell index → (state, slurm task, whole line).
fn status(dir: &Path) -> Vec<(usize, String, String, String)> {
    let (ok, out, err) = run(&["study", "status", "S"], dir, None);
    assert!(ok, "{err}");
    out.lines()
        .take_while(|l| !l.is_empty())
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 7 {
                return None;
            }
            let idx = f.first()?.parse().ok()?;
            let task = if f.get(6) == Some(&"—") { "—".to_string() } else { format!("{} {}", f[6], f.get(7)?) };
            Some((idx, f.get(4)?.to_string(), task, l.to_string()))
        })
        .collect()
}

fn eval_of(run: &Path, key: &str) -> f64 {
    let v: Value = serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {}", run.display()))
}

fn report(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("S/report.json")).unwrap()).unwrap()
}

#[test]
fn a_local_study_killed_in_every_final_phase_is_finished_by_rerunning_it_and_reports_over_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Every run is SIGKILLed after its final pictures, before its summary.
    let mut args = vec!["study"];
    args.extend(SMOKE);
    args.extend(["--retries", "0"]);
    let (ok, _, err) = run(&args, dir, Some("kill-before-summary"));
    assert!(!ok && err.contains("4 run(s) failed"), "{err}");
    let rows = status(dir);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r.1 == "interrupted"), "{rows:?}");
    assert!(!dir.join("S/runs/digits/vae-seed0/summary.json").exists());

    // The same command continues it: each run is finished (not retrained) and evaluated.
    let (ok, out, err) = run(&args, dir, None);
    assert!(ok, "{err}");
    assert!(err.contains("4 of 4 runs to do"), "{err}");
    let log = std::fs::read_to_string(dir.join("S/cells/0/log.txt")).unwrap();
    assert!(log.contains("before its final pictures and summary"), "{log}");
    assert!(out.contains("digits: 2 of 2 seeds finished"), "{out}");
    assert!(status(dir).iter().all(|r| r.1 == "done"));
    let (ok, _, err) = run(&args, dir, None);
    assert!(ok && err.contains("0 of 4 runs to do"), "a finished study reruns nothing: {err}");

    // The report's numbers are the runs' own, and its interval is the t interval of them.
    let r = report(dir);
    let ds = &r["datasets"][0];
    assert_eq!(ds["seeds_done"], serde_json::json!([0, 1]));
    let fid = ds["claims"].as_array().unwrap().iter().find(|c| c["claim"].as_str().unwrap().contains("(FID)")).unwrap();
    let runs = dir.join("S/runs/digits");
    let diffs: Vec<f64> = (0..2)
        .map(|s| {
            eval_of(&runs.join(format!("vae-seed{s}")), "fid") - eval_of(&runs.join(format!("dcgan-seed{s}")), "fid")
        })
        .collect();
    for (s, d) in diffs.iter().enumerate() {
        assert!((fid["seeds"][s]["value"].as_f64().unwrap() - d).abs() < 1e-9, "seed {s}: {fid}");
    }
    let mean = (diffs[0] + diffs[1]) / 2.0;
    let half = 12.706_204_7 * (diffs[0] - diffs[1]).abs() / 2f64.sqrt() / 2f64.sqrt();
    assert!((fid["interval"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!((fid["interval"]["hi"].as_f64().unwrap() - (mean + half)).abs() < 1e-6, "{fid}");
    let holds = diffs.iter().filter(|d| **d > 0.0).count();
    assert_eq!(fid["holds"].as_u64().unwrap() as usize, holds);
    assert_eq!(fid["uncertain"].as_bool().unwrap(), mean - half <= 0.0 && mean + half >= 0.0);
    let html = std::fs::read_to_string(dir.join("S/report.html")).unwrap();
    assert!(html.contains("mean [95 % interval]") && html.contains("data:image/png;base64"), "no table or samples");
    assert!(dir.join("S/seed-reports/digits-seed0.html").is_file());
    assert!(dir.join("S/runs/digits/dcgan-seed0/final/walk.png").is_file(), "the first seed draws the pictures");
}

#[test]
fn bad_study_input_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases: [(&[&str], &str); 5] = [
        (&["study", "--dataset", "digits", "--partition", "x"], "--partition is a Slurm resource"),
        (&["study", "--dataset", "digits", "--launcher", "slurm", "--jobs", "2"], "--jobs is for --launcher local"),
        (&["study", "--dataset", "digits", "--seeds", "0"], "--seeds must be at least 1"),
        (&["study", "status", "nowhere"], "nowhere is not a study folder"),
        (&["study", "--seeds", "2"], "give --dataset"),
    ];
    for (args, want) in cases {
        let (ok, _, err) = run(args, dir, None);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
    // A study folder answers only for its own design, and its plan is checked when read.
    let (ok, _, err) =
        run(&["study", "--dataset", "digits", "--seeds", "1", "--max-steps", "5", "--out", "S"], dir, None);
    assert!(ok, "{err}");
    let (ok, _, err) =
        run(&["study", "--dataset", "digits", "--seeds", "3", "--max-steps", "5", "--out", "S"], dir, None);
    assert!(!ok && err.contains("planned with seeds [0]; this asks for [0, 1, 2]"), "{err}");
    let (ok, _, err) = run(&["study", "cell", "S", "--index", "9"], dir, None);
    assert!(!ok && err.contains("there is no cell 9"), "{err}");
    std::fs::write(dir.join("S/plan.json"), b"{\"datasets\": [\"digits\"]").unwrap();
    let (ok, _, err) = run(&["study", "report", "S"], dir, None);
    assert!(!ok && err.contains("plan.json is not a valid plan"), "{err}");
}

fn slurm_up() -> bool {
    let up = Command::new("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| {
        let s = String::from_utf8_lossy(&o.stdout).to_string();
        o.status.success() && ["idle", "mixed", "allocated"].iter().any(|w| s.contains(w))
    });
    if !up {
        assert!(
            std::env::var_os("LATENTLAB_REQUIRE_SLURM").is_none(),
            "LATENTLAB_REQUIRE_SLURM is set but no Slurm node is up (.ci/slurm-up.sh starts one)"
        );
        eprintln!(
            "WARNING: no Slurm cluster here (sinfo): the Slurm study test is skipped; .ci/slurm-up.sh starts one"
        );
    }
    up
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_study_through_slurm_shows_a_cancelled_task_as_failed_and_resubmits_only_it() {
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Every CPU of the node per task: one task at a time, so some wait in the queue.
    let cpus = Command::new("sinfo").args(["-h", "-o", "%c"]).output().unwrap();
    let cpus = String::from_utf8_lossy(&cpus.stdout).lines().next().unwrap_or("2").trim().to_string();
    let mut args = vec!["study"];
    args.extend(SMOKE);
    args.extend(["--launcher", "slurm", "--cpus", &cpus]);
    // Slow file writes (300 ms each; the jobs inherit the environment) keep a task running for
    // seconds: long enough to cancel it.
    let (ok, out, err) = run(&args, dir, Some("slow-write"));
    assert!(ok, "{err}");
    let jobs: Vec<&str> = out.lines().filter(|l| l.starts_with("submitted job")).collect();
    assert_eq!(jobs.len(), 2, "one array per model: {out}");
    assert!(jobs.iter().all(|l| l.contains("2 runs")), "{out}");
    let script = std::fs::read_to_string(dir.join("S/slurm/vae-1.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0,2") && script.contains(&format!("--cpus-per-task={cpus}")), "{script}");

    // While it runs: queued and running come from Slurm.
    let first = status(dir);
    assert!(first.iter().all(|r| r.1 == "queued" || r.1 == "running" || r.1 == "done"), "{first:?}");
    assert!(first.iter().any(|r| r.1 == "queued"), "a whole node per task: some wait: {first:?}");
    let mut victim = None;
    wait_for("a running task", 120, || {
        victim = status(dir).into_iter().find(|r| r.1 == "running");
        victim.is_some()
    });
    let (idx, _, task, _) = victim.unwrap();
    let task_id = task.split_whitespace().next().unwrap().to_string();
    assert!(Command::new("scancel").arg(&task_id).status().unwrap().success());
    wait_for("the cancelled task to show as failed", 60, || {
        status(dir).iter().any(|r| r.0 == idx && r.1 == "failed" && r.3.contains("Slurm CANCELLED"))
    });
    // The report works while tasks are still running or queued.
    let (ok, _, err) = run(&["study", "report", "S"], dir, None);
    assert!(ok, "{err}");
    wait_for("the other tasks to finish", 300, || status(dir).iter().filter(|r| r.1 == "done").count() == 3);
    let (_, out, _) = run(&["study", "status", "S"], dir, None);
    assert!(out.contains(&format!("--- cell {idx}")) && out.contains("CANCELLED AT"), "the log's tail: {out}");

    // The next `study` submits only what is missing.
    let (ok, out, err) = run(&args, dir, None);
    assert!(ok, "{err}");
    let again: Vec<&str> = out.lines().filter(|l| l.starts_with("submitted job")).collect();
    assert_eq!(again.len(), 1, "{out}");
    assert!(again[0].contains("1 runs"), "{out}");
    wait_for("the resubmitted task", 120, || status(dir).iter().all(|r| r.1 == "done"));
    let (ok, out, err) = run(&args, dir, None);
    assert!(ok && out.contains("nothing to submit"), "{out}{err}");
    let (ok, out, err) = run(&["study", "report", "S"], dir, None);
    assert!(ok && out.contains("digits: 2 of 2 seeds finished"), "{out}{err}");
    assert_eq!(report(dir)["datasets"][0]["seeds_done"], serde_json::json!([0, 1]));
}

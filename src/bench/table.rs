//! The human-readable benchmark table.

use super::BenchRow;

/// The human-readable table.
pub fn table(rows: &[BenchRow]) -> String {
    let with_ref = rows.iter().any(|r| r.pytorch_samples_per_sec.is_some());
    let mut s = format!(
        "{:<8} {:>5} {:>10} {:>9} {:>9} {:>8} {:>7} {:>10}",
        "model", "batch", "samples/s", "step ms", "GFLOP/s", "% peak", "threads", "cores busy"
    );
    let with_loop = rows.iter().any(|r| r.loop_samples_per_sec.is_some());
    if with_ref {
        s += &format!(" {:>11} {:>10}", "PyTorch s/s", "vs PyTorch");
    }
    if with_loop {
        s += &format!(" {:>10} {:>9}", "loop s/s", "loop/step");
    }
    s.push('\n');
    for r in rows {
        s += &format!(
            "{:<8} {:>5} {:>10.0} {:>9.2} {:>9} {:>8} {:>7} {:>10}",
            r.model,
            r.batch,
            r.samples_per_sec,
            r.median_step_ms,
            if r.flops_per_sample > 0 { format!("{:.1}", r.gflops_per_sec) } else { "-".into() },
            r.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}%")),
            r.threads,
            r.cores_busy.map_or("n/a".into(), |c| format!("{c:.2}")),
        );
        if with_ref {
            s += &format!(
                " {:>11} {:>10}",
                r.pytorch_samples_per_sec.map_or("-".into(), |v| format!("{v:.0}")),
                r.vs_pytorch.map_or("-".into(), |v| format!("{v:.2}×"))
            );
        }
        if with_loop {
            s += &format!(
                " {:>10} {:>9}",
                r.loop_samples_per_sec.map_or("-".into(), |v| format!("{v:.0}")),
                r.loop_vs_step.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
            );
        }
        s.push('\n');
    }
    for r in rows {
        if let Some(l) = &r.loop_secs {
            let t = l.epochs().max(1e-9);
            let pct = |x: f64| format!("{:.1}%", 100.0 * x / t);
            s += &format!(
                "{} loop ({} steps, {:.1} s): step {}, data {}, log {}, checkpoints {}, test pass {}, pictures {}, \
                 other {}; the run's end (last checkpoint write, final test pass, pictures) {:.1} s more; its steps \
                 ran at {:.0} samples/s (bare steps: {:.0} at the median step, {:.0} at the mean)\n",
                r.model,
                l.steps,
                l.epochs(),
                pct(l.step),
                pct(l.data),
                pct(l.log),
                pct(l.checkpoint),
                pct(l.test),
                pct(l.pictures),
                pct(l.other),
                l.last,
                l.step_rate(),
                r.samples_per_sec,
                r.batch as f64 * 1e3 / r.mean_step_ms.max(1e-9)
            );
        }
    }
    if let Some(r) = rows.first() {
        s += &r.cpu.line();
        s.push('\n');
        match (r.peak_gflops, r.peak_isa) {
            (Some(gf), Some(isa)) => {
                s += &format!(
                    "peak assumed: {gf:.1} GFLOP/s f32 = {} threads running {isa} FMA loops, measured now; FLOPs = 2 × \
                     the linear/conv multiply-adds of forward and backward, convolutions counted as direct ones (Winograd \
                     layers do fewer: their GFLOP/s is effective; README, \"Speed\")\n",
                    r.threads
                )
            }
            _ => {
                s += &format!(
                    "on --device {}: no % of peak (the peak measured is the CPU's); threads and cores busy are the \
                     host's, which feeds the device\n",
                    r.device.name()
                )
            }
        }
        if r.rounds > 1 {
            s += &format!(
                "medians over {} rounds of {} steps{}\n",
                r.rounds,
                r.steps,
                if with_ref {
                    "; each round runs latentlab then PyTorch, the ratio is the median of per-round ratios"
                } else {
                    ""
                }
            );
        }
    }
    s
}

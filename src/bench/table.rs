//! The human-readable benchmark table.

use super::BenchRow;

/// The human-readable table.
pub fn table(rows: &[BenchRow]) -> String {
    let with_ref = rows.iter().any(|r| r.pytorch_samples_per_sec.is_some());
    let mut s = format!(
        "{:<8} {:>5} {:>10} {:>9} {:>9} {:>8} {:>7} {:>10}",
        "model", "batch", "samples/s", "step ms", "GFLOP/s", "% peak", "threads", "cores busy"
    );
    if with_ref {
        s += &format!(" {:>11} {:>10}", "PyTorch s/s", "vs PyTorch");
    }
    s.push('\n');
    for r in rows {
        s += &format!(
            "{:<8} {:>5} {:>10.0} {:>9.2} {:>9.1} {:>7.1}% {:>7} {:>10}",
            r.model,
            r.batch,
            r.samples_per_sec,
            r.median_step_ms,
            r.gflops_per_sec,
            r.pct_of_peak,
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
        s.push('\n');
    }
    if let Some(r) = rows.first() {
        s += &format!(
            "peak assumed: {:.1} GFLOP/s f32 = {} threads running {} FMA loops, measured now; FLOPs = 2 × the \
             linear/conv multiply-adds of forward and backward (README, \"Speed\")\n",
            r.peak_gflops, r.threads, r.peak_isa
        );
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

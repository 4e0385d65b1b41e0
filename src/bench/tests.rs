use super::*;
use crate::models::Net;
use crate::train::trainer::spec_of;
use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

#[test]
fn median_of_odd_and_even() {
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
}

/// The FLOP model's multiply-adds equal the weight-matrix sizes of the network bench builds
/// (for fully connected layers, multiply-adds per sample = weights), counted from the module.
#[test]
fn mlp_vae_flops_match_the_real_network() {
    let cfg = BenchModel::MlpVae
        .config(128, DeviceChoice::Cpu, None, data::ImageShape { channels: 1, height: 28, width: 28 })
        .unwrap();
    let spec = spec_of(&cfg, data::ImageShape { channels: 1, height: 28, width: 28 }, 10);
    let net = Net::new(&spec, 0, &Device::flex());
    struct Weights(u64);
    impl ModuleVisitor for Weights {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if D == 2 {
                self.0 += p.val().shape().num_elements() as u64;
            }
        }
    }
    let mut w = Weights(0);
    net.visit(&mut w);
    let macs: u64 = flops::mlp_vae_layers(784, &[400], 20).iter().sum();
    assert_eq!(w.0, macs);
}

/// The DCGAN FLOP model's per-layer multiply-adds equal those of the networks `bench` and `train
/// dcgan` build: weights × output positions for a convolution, weights × input positions for a
/// transposed one (every input pixel scatters one kernel), weights for a linear layer; the
/// positions come from running each layer, not from the formula under test.
#[test]
fn dcgan_flops_match_the_real_network() {
    use crate::models::gan::{Discriminator, Generator};
    let dev = Device::flex();
    let cfg = BenchModel::Dcgan
        .config(64, DeviceChoice::Cpu, None, data::ImageShape { channels: 1, height: 28, width: 28 })
        .unwrap();
    let numel = |w: &Param<Tensor<4>>| w.val().shape().num_elements() as u64;
    let positions = |t: &Tensor<4>| {
        let [_, _, h, w] = t.dims();
        (h * w) as u64
    };
    for shape in [
        data::ImageShape { channels: 1, height: 28, width: 28 },
        data::ImageShape { channels: 3, height: 32, width: 24 },
    ] {
        let spec = spec_of(&cfg, shape, 10);
        let Net::Gan(adv) = Net::new(&spec, 0, &dev) else { panic!("bench's dcgan is not a GAN") };
        let (Generator::Conv(g), Discriminator::Conv(d)) = (adv.g, adv.d) else {
            panic!("bench's dcgan is not convolutional")
        };
        let z = Tensor::<4>::zeros([1, g.up1.weight.dims()[0], g.h4, g.w4], &dev);
        let up1 = g.up1.forward(z.clone());
        let g_macs = vec![
            g.fc.weight.val().shape().num_elements() as u64,
            numel(&g.up1.weight) * positions(&z),
            numel(&g.up2.weight) * positions(&up1),
        ];
        let x = Tensor::<4>::zeros([1, shape.channels, shape.height, shape.width], &dev);
        let down1 = d.down1.forward(x);
        let down2 = d.down2.forward(down1.clone());
        let conv3 = d.conv3.as_ref().expect("train dcgan's D has the 3×3 layer");
        let out3 = conv3.forward(down2.clone());
        let d_macs = vec![
            numel(&d.down1.weight) * positions(&down1),
            numel(&d.down2.weight) * positions(&down2),
            numel(&conv3.weight) * positions(&out3),
            d.fc.weight.val().shape().num_elements() as u64,
        ];
        assert_eq!((g_macs, d_macs), flops::dcgan_layers(shape, 100), "{shape:?}");
    }
}

#[test]
fn parses_reference_lines_and_rejects_garbage() {
    let v = parse_pytorch("warning: x\n{\"model\": \"dcgan\", \"samples_per_sec\": 780.5}\n").unwrap();
    assert_eq!(v, vec![("dcgan".to_string(), 780.5)]);
    assert!(parse_pytorch("").unwrap_err().to_string().contains("no results"));
    assert!(parse_pytorch("{\"model\": 1}").unwrap_err().to_string().contains("lacks"));
}

#[test]
fn table_has_every_column() {
    let row = BenchRow {
        model: "dcgan",
        device: DeviceChoice::Cpu,
        batch: 64,
        steps: 3,
        rounds: 1,
        median_step_ms: 100.0,
        mean_step_ms: 104.0,
        samples_per_sec: 640.0,
        flops_per_sample: 1_000_000,
        gflops_per_sec: 0.64,
        peak_gflops: Some(64.0),
        peak_isa: Some("avx2+fma"),
        pct_of_peak: Some(1.0),
        threads: 2,
        cores_busy: Some(1.9),
        round_samples_per_sec: vec![640.0],
        pytorch_samples_per_sec: Some(1280.0),
        round_pytorch_samples_per_sec: vec![1280.0],
        vs_pytorch: Some(0.5),
        loop_samples_per_sec: Some(576.0),
        loop_vs_step: Some(0.9),
        loop_secs: Some(crate::artifacts::LoopSecs {
            data: 1.0,
            step: 8.0,
            checkpoint: 1.0,
            steps: 100,
            samples: 6400,
            ..Default::default()
        }),
        cpu: cpu::Cpu {
            arch: "x86_64",
            vendor: Some("GenuineIntel".into()),
            brand: Some("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz".into()),
            family: Some(6),
            model: Some(143),
            vector: "AVX-512",
            logical_cpus: 2,
            l2_kib: Some(2048),
            l3_kib: None,
        },
    };
    let t = table(&[row]);
    for col in [
        "samples/s",
        "GFLOP/s",
        "% peak",
        "threads",
        "cores busy",
        "vs PyTorch",
        "0.50×",
        "1.90",
        "loop s/s",
        "576",
        "90.0%",
        "step 80.0%, data 10.0%",
        "checkpoints 10.0%",
        "CPU: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz (GenuineIntel, family 6, model 143), AVX-512, 2 logical CPUs, L2 2048 KiB\n",
    ] {
        assert!(t.contains(col), "{col} missing from\n{t}");
    }
}

/// `--pytorch` waits for the reference to stop spinning before timing latentlab: the wait lasts
/// while a process burns CPU (even while other work keeps it off the cores: CI runs tests in
/// parallel) and ends within a few polls of an idle one.
#[cfg(target_os = "linux")]
#[test]
fn waits_for_a_busy_process_and_not_for_an_idle_one() {
    use std::process::Command;
    use std::time::Duration;
    let mut idle = Command::new("sleep").arg("5").spawn().unwrap();
    let waited = reference::wait_idle(idle.id(), Duration::from_secs(3));
    idle.kill().unwrap();
    idle.wait().unwrap();
    assert!(waited < Duration::from_millis(500), "waited {waited:?} for a sleeping process");
    // A shell counting in a loop (a second or so of CPU), then marking the end and sleeping.
    let dir = tempfile::tempdir().unwrap();
    let done = dir.path().join("done");
    let script = format!("i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done; : > '{}'; sleep 20", done.display());
    let mut busy = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let waited = reference::wait_idle(busy.id(), Duration::from_secs(20));
    let finished = done.exists();
    busy.kill().unwrap();
    busy.wait().unwrap();
    assert!(finished, "stopped waiting after {waited:?} while the process was still counting");
    assert!(waited < Duration::from_secs(19), "never saw the process go idle ({waited:?})");
}

/// CPUID's vendor, family, model and vector width agree with what the kernel read from the same
/// CPU into /proc/cpuinfo (an independent decoding of the extended family and model fields).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn the_cpu_named_is_the_one_proc_cpuinfo_describes() {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| panic!("no '{name}' in /proc/cpuinfo"))
    };
    let cpu = cpu::Cpu::detect();
    assert_eq!(cpu.vendor.as_deref(), Some(field("vendor_id").as_str()));
    assert_eq!(cpu.family.map(|f| f.to_string()), Some(field("cpu family")));
    assert_eq!(cpu.model.map(|m| m.to_string()), Some(field("model")));
    let flags: Vec<String> = field("flags").split_whitespace().map(String::from).collect();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let want = if has("avx512f") && has("fma") {
        "AVX-512"
    } else if has("avx2") && has("fma") {
        "AVX2"
    } else {
        "none"
    };
    assert_eq!(cpu.vector, want);
    assert!(cpu.line().starts_with("CPU: ") && cpu.line().contains(want), "{}", cpu.line());
}

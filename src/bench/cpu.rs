//! Which CPU a benchmark ran on, read from the CPU itself (CPUID), so that every number `bench`
//! prints or writes names its machine: speed on one vendor's CPU is not speed on the other's, and
//! earlier tables could not tell a Zen 4 host from a Zen 5 one because nothing recorded it.

use serde::Serialize;

/// The CPU as CPUID reports it (x86); elsewhere only the architecture and the thread count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// `x86_64`, `aarch64`, ….
    pub arch: &'static str,
    /// CPUID's vendor string: `GenuineIntel`, `AuthenticAMD`, ….
    pub vendor: Option<String>,
    /// The brand string, e.g. "AMD EPYC 9R14 96-Core Processor" (VMs may shorten it).
    pub brand: Option<String>,
    /// Display family and model (extended fields folded in, as the vendors' manuals define them):
    /// AMD family 25 is Zen 3 and Zen 4, 26 is Zen 5; Intel's family 6 models name the core.
    pub family: Option<u8>,
    pub model: Option<u8>,
    /// The widest vector extension the CPU reports with FMA: `AVX-512`, `AVX2`, or `none`.
    pub vector: &'static str,
    /// Logical CPUs this process may use.
    pub logical_cpus: usize,
    /// Per-cache sizes in KiB (one L2, the L3 the core shares), where CPUID describes them.
    pub l2_kib: Option<usize>,
    pub l3_kib: Option<usize>,
}

impl Cpu {
    /// The CPU this process runs on.
    pub fn detect() -> Cpu {
        let logical_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            let id = raw_cpuid::CpuId::new();
            let feat = id.get_feature_info();
            let caches: Vec<(u8, usize)> = id
                .get_cache_parameters()
                .map(|it| {
                    it.filter(|c| c.cache_type() != raw_cpuid::CacheType::Instruction)
                        .map(|c| {
                            let bytes =
                                c.associativity() * c.physical_line_partitions() * c.coherency_line_size() * c.sets();
                            (c.level(), bytes / 1024)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let level = |l: u8| caches.iter().find(|c| c.0 == l).map(|c| c.1);
            Cpu {
                arch: std::env::consts::ARCH,
                vendor: id.get_vendor_info().map(|v| v.as_str().to_string()),
                brand: id.get_processor_brand_string().map(|b| b.as_str().trim().to_string()),
                family: feat.as_ref().map(|f| f.family_id()),
                model: feat.as_ref().map(|f| f.model_id()),
                vector: vector_extension(),
                logical_cpus,
                l2_kib: level(2),
                l3_kib: level(3),
            }
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        Cpu {
            arch: std::env::consts::ARCH,
            vendor: None,
            brand: None,
            family: None,
            model: None,
            vector: vector_extension(),
            logical_cpus,
            l2_kib: None,
            l3_kib: None,
        }
    }

    /// One line for the table: "CPU: AMD EPYC (AuthenticAMD, family 25, model 17), AVX-512, 2
    /// logical CPUs, L2 1024 KiB, L3 32768 KiB".
    pub fn line(&self) -> String {
        let mut s = format!("CPU: {}", self.brand.as_deref().unwrap_or(self.arch));
        if let (Some(v), Some(f), Some(m)) = (&self.vendor, self.family, self.model) {
            s += &format!(" ({v}, family {f}, model {m})");
        }
        s += &format!(", {}, {} logical CPUs", self.vector, self.logical_cpus);
        for (name, kib) in [("L2", self.l2_kib), ("L3", self.l3_kib)] {
            if let Some(k) = kib {
                s += &format!(", {name} {k} KiB");
            }
        }
        s
    }
}

/// The widest FMA vector extension the CPU reports (what gemm and our kernels dispatch on).
fn vector_extension() -> &'static str {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        let fma = is_x86_feature_detected!("fma");
        if fma && is_x86_feature_detected!("avx512f") {
            "AVX-512"
        } else if fma && is_x86_feature_detected!("avx2") {
            "AVX2"
        } else {
            "none"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "none"
    }
}

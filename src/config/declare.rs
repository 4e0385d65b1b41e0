//! `settings!` declares every option once and generates from that one list: the `Options` a user
//! gives (flags and `--config` files: every field optional, kebab-case), their layering
//! (`Options::or`), the names of the ones given (for refusing options a model does not use), and
//! the effective `RunConfig` stored in a run folder, with the values that configs written before
//! an option existed are read with.

macro_rules! settings {
    (
        // Always resolved (a default exists for every model): `RunConfig` holds the value.
        // `= legacy` is what a stored config.toml written before the option existed means.
        required { $( $(#[$ra:meta])* $rn:ident : $rt:ty $(= $legacy:expr)? ; )* }
        // May stay unset: `RunConfig` holds an Option.
        optional { $( $(#[$oa:meta])* $on:ident : $ot:ty ; )* }
        // Flags only; `RunConfig` stores what they combine into (`objective`).
        flags { $( $(#[$fa:meta])* $fname:ident : $fty:ty ; )* }
    ) => {
        /// Settings a user may give as flags or in a `--config` TOML file (same names, kebab-case).
        #[derive(Clone, Debug, Default, serde::Deserialize, clap::Args)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Options {
            $( $(#[$ra])* #[arg(long)] pub $rn: Option<$rt>, )*
            $( $(#[$oa])* #[arg(long)] pub $on: Option<$ot>, )*
            $( $(#[$fa])* #[arg(long)] pub $fname: Option<$fty>, )*
        }

        impl Options {
            /// Every option's field name.
            pub const NAMES: &'static [&'static str] =
                &[$(stringify!($rn),)* $(stringify!($on),)* $(stringify!($fname),)*];

            /// `self` with unset fields taken from `base`.
            pub fn or(self, base: Options) -> Options {
                Options {
                    $( $rn: self.$rn.or(base.$rn), )*
                    $( $on: self.$on.or(base.$on), )*
                    $( $fname: self.$fname.or(base.$fname), )*
                }
            }

            /// Field names of the options that are set.
            pub fn given(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $( if self.$rn.is_some() { v.push(stringify!($rn)); } )*
                $( if self.$on.is_some() { v.push(stringify!($on)); } )*
                $( if self.$fname.is_some() { v.push(stringify!($fname)); } )*
                v
            }
        }

        /// The effective configuration of a run.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RunConfig {
            pub model: ModelKind,
            $( pub $rn: $rt, )*
            $( #[serde(default, skip_serializing_if = "Option::is_none")] pub $on: Option<$ot>, )*
            #[serde(default)]
            pub objective: Objective,
        }

        impl RunConfig {
            /// The config from fully layered options (every required one set by the defaults).
            fn from_layered(model: ModelKind, o: Options, objective: Objective) -> Result<RunConfig> {
                Ok(RunConfig {
                    model,
                    $( $rn: o.$rn.ok_or_else(|| anyhow::anyhow!(
                        "internal: no default for --{} of model '{}'", stringify!($rn), model.name()))?, )*
                    $( $on: o.$on, )*
                    objective,
                })
            }

            /// Fill in options a stored config predates, with the value they had before they existed.
            fn add_legacy_defaults(t: &mut toml::Table) {
                $( $(
                    if !t.contains_key(stringify!($rn)) {
                        let v: $rt = $legacy;
                        t.insert(stringify!($rn).into(), toml::Value::try_from(v).expect("legacy default serialises"));
                    }
                )? )*
            }
        }
    };
}

pub(crate) use settings;

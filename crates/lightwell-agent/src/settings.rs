//! The agent's settings that flags and environment variables may set over
//! `agent.toml`, each declared once ([`AgentSettings`]): its flag, its
//! environment variable and its key in `agent.toml` come from one field.
//! Flags win over the environment, the environment over `agent.toml`,
//! `agent.toml` over the defaults (those of [`AgentConfig`]).
//!
//! The state dir itself ([`StateDirArg`]) is a flag or environment
//! variable only: `agent.toml` lives in it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use crate::config::AgentConfig;

/// The state dir of `lightwell join`, `agent` and `leave`, declared once.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct StateDirArg {
    /// The agent's state dir (written by `lightwell join`).
    #[arg(long, env = "LIGHTWELL_STATE_DIR", default_value = crate::state::DEFAULT_STATE_DIR, global = true)]
    pub state_dir: PathBuf,
}

/// Declares the layered settings once and generates their list of keys,
/// the merge of one layer over a lower one, and their application to an
/// [`AgentConfig`] (whose field of the same name is the `agent.toml` key).
macro_rules! agent_settings {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : Option<$ty:ty>, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl $name {
            /// Every setting's name: its `agent.toml` key; its flag is the key
            /// with `-` for `_`, its environment variable `LIGHTWELL_AGENT_`
            /// and the key in capitals.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Each setting from `self` where it is set there, otherwise from `lower`.
            pub fn over(self, lower: Self) -> Self {
                Self { $( $field: self.$field.or(lower.$field), )* }
            }

            /// Replaces what `config` (read from `agent.toml`, defaults
            /// filled in) says with the settings set here.
            pub fn apply(self, config: &mut AgentConfig) {
                $( if let Some(value) = self.$field { config.$field = value; } )*
            }
        }
    };
}

agent_settings! {
    /// Settings of `lightwell agent` over `agent.toml`.
    #[derive(Debug, Clone, Default, PartialEq, Args, Deserialize)]
    #[serde(default)]
    pub struct AgentSettings {
        /// Server URLs, tried in turn (comma-separated), instead of `agent.toml`'s `servers`.
        #[arg(long, env = "LIGHTWELL_AGENT_SERVERS", value_delimiter = ',')]
        pub servers: Option<Vec<String>>,
        /// Fraction of a certificate's lifetime after which it is renewed (default 0.6667).
        #[arg(long, env = "LIGHTWELL_AGENT_RENEW_AT")]
        pub renew_at: Option<f64>,
        /// Seconds between full resyncs of the trust bundle and CRLs (default 300).
        #[arg(long, env = "LIGHTWELL_AGENT_RESYNC_INTERVAL_SECS")]
        pub resync_interval_secs: Option<u64>,
        /// Seconds between rotations of the machine secret (default 604800).
        #[arg(long, env = "LIGHTWELL_AGENT_SECRET_ROTATION_SECS")]
        pub secret_rotation_secs: Option<u64>,
        /// The SPIFFE Workload API's Unix socket (default /run/lightwell/agent.sock; `none`: off).
        #[arg(long, env = "LIGHTWELL_AGENT_WORKLOAD_SOCKET")]
        pub workload_socket: Option<String>,
        /// Workload API connections one uid may hold open at once (default 256).
        #[arg(long, env = "LIGHTWELL_AGENT_WORKLOAD_CONNECTIONS_PER_UID")]
        pub workload_connections_per_uid: Option<usize>,
    }
}

impl AgentSettings {
    /// The settings given by environment variables in `env` (an explicit
    /// map, not the process environment), each parsed as its flag would be;
    /// a bad value is refused naming its variable.
    pub fn from_env(env: &BTreeMap<OsString, OsString>) -> Result<Self, String> {
        use clap::FromArgMatches;
        let declared = Self::augment_args(clap::Command::new("env"));
        let parser = declared.clone().mut_args(|a| a.env(None)).no_binary_name(true);
        let mut layer = Self::default();
        for arg in declared.get_arguments() {
            let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else { continue };
            let Some(value) = env.get(var) else { continue };
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(value);
            let var = var.to_string_lossy();
            let matches = parser.clone().try_get_matches_from([flag]).map_err(|e| {
                let e = e.to_string();
                format!("{var}: {}", e.lines().next().unwrap_or_default().trim_start_matches("error: "))
            })?;
            layer = Self::from_arg_matches(&matches).map_err(|e| format!("{var}: {e}"))?.over(layer);
        }
        Ok(layer)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches, Parser};

    use super::*;

    /// `lightwell agent`'s arguments as the CLI declares them.
    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        state: StateDirArg,
        #[command(flatten)]
        settings: AgentSettings,
    }

    const FILE: &str = "servers = [\"https://file.example\"]\ntenant = \"t.example\"\nhostname = \"h.t.example\"\n\
                        renew_at = 0.5\nresync_interval_secs = 60\n";

    /// The configuration `agent.toml` (`file`) gives once the environment
    /// `env` and the flags `flags` are laid over it.
    fn layers(file: &str, env: &[(&str, &str)], flags: &[&str]) -> AgentConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, file).unwrap();
        let mut config = AgentConfig::load(&path).unwrap();
        let cmd = Cmd::command().mut_args(|a| a.env(None));
        let matches = cmd.try_get_matches_from(std::iter::once("agent").chain(flags.iter().copied())).unwrap();
        let flags = AgentSettings::from_arg_matches(&matches).unwrap();
        let env = env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect();
        flags.over(AgentSettings::from_env(&env).unwrap()).apply(&mut config);
        config
    }

    #[test]
    fn every_agent_setting_has_a_flag_an_environment_variable_and_an_agent_toml_key() {
        let declared = AgentSettings::augment_args(clap::Command::new("agent"));
        let ids: Vec<&str> = declared.get_arguments().map(|a| a.get_id().as_str()).collect();
        assert_eq!(ids, AgentSettings::KEYS);
        let samples = [("servers", "https://a.example"), ("renew_at", "0.25"), ("resync_interval_secs", "11")];
        let samples: BTreeMap<&str, &str> = samples
            .into_iter()
            .chain([
                ("secret_rotation_secs", "12"),
                ("workload_socket", "/run/test/agent.sock"),
                ("workload_connections_per_uid", "7"),
            ])
            .collect();
        for arg in declared.get_arguments() {
            let key = arg.get_id().as_str();
            let (long, var) = (key.replace('_', "-"), format!("LIGHTWELL_AGENT_{}", key.to_uppercase()));
            assert_eq!(arg.get_long(), Some(long.as_str()), "{key}: its flag");
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(&var)), "{key}: its environment variable");
            let sample = samples[key];
            let by_flag = layers(FILE, &[], &[&format!("--{long}={sample}")]);
            let by_env = layers(FILE, &[(&var, sample)], &[]);
            let value = match key {
                "servers" => format!("[{sample:?}]"),
                "workload_socket" => format!("{sample:?}"),
                _ => sample.to_string(),
            };
            let others = FILE.lines().filter(|l| !l.starts_with(&format!("{key} ="))).collect::<Vec<_>>().join("\n");
            let by_file = layers(&format!("{others}\n{key} = {value}\n"), &[], &[]);
            assert_ne!(by_flag, layers(FILE, &[], &[]), "{key}: set by its flag");
            assert_eq!(by_env, by_flag, "{key}: its environment variable sets the same");
            assert_eq!(by_file, by_flag, "{key}: its agent.toml key sets the same");
        }
    }

    #[test]
    fn a_list_and_a_number_come_from_a_flag_over_the_environment_over_agent_toml() {
        let servers = |c: &AgentConfig| c.servers.clone();
        assert_eq!(servers(&layers(FILE, &[], &[])), ["https://file.example"], "agent.toml");
        let env = [("LIGHTWELL_AGENT_SERVERS", "https://e1.example,https://e2.example")];
        assert_eq!(servers(&layers(FILE, &env, &[])), ["https://e1.example", "https://e2.example"], "env over file");
        let flag = ["--servers", "https://f1.example,https://f2.example"];
        assert_eq!(servers(&layers(FILE, &env, &flag)), ["https://f1.example", "https://f2.example"], "flag over env");
        let resync = |c: &AgentConfig| c.resync_interval_secs;
        let no_resync = "servers = [\"https://x.example\"]\ntenant = \"t.example\"\nhostname = \"h.t.example\"\n";
        assert_eq!(resync(&layers(no_resync, &[], &[])), 300, "the default");
        assert_eq!(resync(&layers(FILE, &[], &[])), 60, "agent.toml over the default");
        let env = [("LIGHTWELL_AGENT_RESYNC_INTERVAL_SECS", "70")];
        assert_eq!(resync(&layers(FILE, &env, &[])), 70, "env over file");
        assert_eq!(resync(&layers(FILE, &env, &["--resync-interval-secs=80"])), 80, "flag over env");
        let bad = [(OsString::from("LIGHTWELL_AGENT_RENEW_AT"), OsString::from("soon"))].into();
        assert!(AgentSettings::from_env(&bad).unwrap_err().contains("LIGHTWELL_AGENT_RENEW_AT"));
    }

    #[test]
    fn the_state_dir_is_a_flag_with_a_default() {
        let cmd = || Cmd::command().mut_args(|a| a.env(None));
        let parse = |args: &[&str]| {
            let m = cmd().try_get_matches_from(std::iter::once("agent").chain(args.iter().copied())).unwrap();
            Cmd::from_arg_matches(&m).unwrap().state.state_dir
        };
        assert_eq!(parse(&[]), PathBuf::from(crate::state::DEFAULT_STATE_DIR));
        assert_eq!(parse(&["--state-dir", "/srv/agent"]), PathBuf::from("/srv/agent"));
        let cmd = Cmd::command();
        let env = cmd.get_arguments().find(|a| a.get_id() == "state_dir").and_then(|a| a.get_env());
        assert_eq!(env, Some(std::ffi::OsStr::new("LIGHTWELL_STATE_DIR")));
    }
}

//! Each benchmark command at a tiny size, so the commands do not rot: it
//! exits 0 and prints its figure lines. The figures themselves are not
//! checked — timings belong in BENCHMARKS.md, not in assertions.
//!
//! Like the end-to-end tests, these run the real `lightwelld` and `lightwell`
//! binaries, which must be built beside the bench (`cargo build --workspace`)
//! or found through `LIGHTWELL_BIN_DIR`.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lightwell-bench")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "lightwell-bench {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has_line(out: &str, prefix: &str, field: &str) {
    assert!(
        out.lines().any(|l| l.starts_with(prefix) && l.contains(field)),
        "no line starting {prefix:?} with {field:?} in:\n{out}"
    );
}

#[test]
fn propagation_to_three_agents_prints_its_latencies() {
    let out = bench(&["propagation", "--agents", "3", "--revocations", "1"]);
    has_line(&out, "joins hosts=3 ", "p99_ms=");
    has_line(&out, "propagation agents=3 revocation=1 reached=3/3 ", "p99_ms=");
    has_line(&out, "propagation agents=3 overall ", "target=");
}

#[test]
fn agent_footprint_prints_rss_and_cpu_of_each_phase() {
    let out = bench(&["agent-footprint", "--seconds", "2"]);
    for phase in ["idle", "syncing", "renewing"] {
        has_line(&out, &format!("footprint phase={phase} "), "cpu_s_per_min=");
    }
    has_line(&out, "footprint overall ", "peak_rss_mb=");
}

#[test]
fn ldap_against_slapd_prints_every_workload_and_ratio() {
    // Needs OpenLDAP's slapd (scripts/test.sh installs it).
    let out = bench(&["ldap", "--users", "200", "--connections", "2", "--seconds", "1"]);
    for w in ["uid-eq", "member-of", "simple-bind"] {
        for server in ["lightwell", "slapd"] {
            has_line(&out, &format!("ldap workload={w} server={server} "), "ops_per_s=");
        }
        has_line(&out, &format!("ldap workload={w} ratio_lightwell_to_slapd="), "target=");
    }
    has_line(&out, "ldap workload=sasl-external server=lightwell ", "p99_ms=");
}

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

#[test]
fn issuance_prints_every_run_and_the_ratios_to_its_baselines() {
    let out = bench(&["issuance", "--clients", "2", "--seconds", "1", "--warmup-secs", "0"]);
    has_line(&out, "issuance run=crypto ", "per_s=");
    for run in ["cfssl", "sqlite", "postgres"] {
        has_line(&out, &format!("issuance run={run} clients=2 "), "p99_ms=");
    }
    has_line(&out, "issuance summary db=sqlite ", "vs_crypto=");
    has_line(&out, "issuance summary db=postgres ", "vs_cfssl=");
}

#[test]
fn crl_prints_build_times_and_revocation_latency() {
    let out = bench(&["crl", "--entries", "10,100", "--revoked", "100", "--revocations", "2"]);
    has_line(&out, "crl build entries=100 reason=none ", "bytes_per_entry=");
    has_line(&out, "crl build entries=100 reason=key-compromise ", "bytes_per_entry=");
    has_line(&out, "crl revoke overall already_revoked=100 revocations=2 ", "p99_ms=");
    has_line(&out, "crl served_listing overall already_revoked=100 revocations=2 ", "p99_ms=");
}

#[test]
fn join_prints_one_join_and_concurrent_joins() {
    let out = bench(&["join", "--sequential", "2", "--concurrent", "3"]);
    has_line(&out, "join sequential hosts=2 ", "p99_ms=");
    has_line(&out, "join concurrent hosts=3 ", "joins_per_s=");
}

#[test]
fn scale_prints_rates_start_up_and_bytes_per_certificate() {
    let out = bench(&["scale", "--certificates", "100", "--principals", "10", "--clients", "2", "--seconds", "1"]);
    has_line(&out, "scale seeded certificates=100 principals=10 ", "bytes_per_certificate=");
    has_line(&out, "scale db=full ", "start_s=");
    has_line(&out, "scale summary ", "ratio=");
}

#[test]
fn ocsp_against_openssl_prints_both_responders_and_the_ratio() {
    let out = bench(&["ocsp", "--certificates", "10", "--clients", "4", "--seconds", "1"]);
    for server in ["lightwell", "openssl"] {
        has_line(&out, &format!("ocsp server={server} "), "errors=0 server_cpu_ms_per_response=");
    }
    has_line(&out, "ocsp ratio_vs_openssl=", "target=");
}

#[test]
fn workload_prints_memory_updates_on_every_stream_and_first_svid_latency() {
    // No rotation: the shortest entry TTL is 60 s, so one takes 30 s.
    let out = bench(&[
        "workload",
        "--streams",
        "3",
        "--revocations",
        "1",
        "--rotations",
        "0",
        "--samples",
        "3",
        "--seconds",
        "1",
    ]);
    has_line(&out, "workload phase=streams ", "per_stream_kb=");
    has_line(&out, "workload rss streams=3 ", "target=");
    for kind in ["revocation", "deletion"] {
        has_line(&out, &format!("workload update kind={kind} round=1 reached=3/3 "), "p99_ms=");
    }
    has_line(&out, "workload first_svid from=spawn samples=3 ", "target=");
}

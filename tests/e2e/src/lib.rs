//! End-to-end tests live in `tests/`; they run the real binaries through
//! `lightwell-testkit`.
#![forbid(unsafe_code)]

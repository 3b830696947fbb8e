//! Reading passwords: from a file, an environment variable, or a prompt —
//! never from the command line.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// Reads a secret from `file`, else from the variable `env`, else by prompting on a terminal.
pub(crate) fn read(file: Option<&Path>, env: &str, prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(f) = file {
        let text = Zeroizing::new(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?);
        return Ok(Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_string()));
    }
    if let Ok(v) = std::env::var(env) {
        return Ok(Zeroizing::new(v));
    }
    if std::io::stdin().is_terminal() {
        return Ok(Zeroizing::new(rpassword::prompt_password(prompt)?));
    }
    bail!("no password given: use a --...-password-file option, the {env} variable, or a terminal")
}

/// Reads an optional secret file.
pub(crate) fn read_file(file: Option<&Path>) -> anyhow::Result<Option<Zeroizing<String>>> {
    file.map(|f| read(Some(f), "", "")).transpose()
}

//! `lightwelld migrate --from sqlite://PATH --to postgres://URL`: moves a
//! single-node install to the HA backend. Every row is copied as it is —
//! nothing is re-issued or re-signed, so certificates keep verifying against
//! the same bundle and the audit chain (keyed by the unchanged KEK) keeps
//! verifying. The target is filled in one transaction and must be empty.

use anyhow::{Context, bail};

use crate::config::{MigrateArgs, database_from};

/// Runs the migration.
pub(crate) async fn run(args: &MigrateArgs) -> anyhow::Result<()> {
    let from = database_from(args.from.clone(), args.from_file.as_deref())?
        .context("pass --from sqlite://PATH (the database to copy)")?;
    let to = database_from(args.to.clone(), args.to_file.as_deref())?
        .context("pass --to postgres://... (the empty database to fill)")?;
    if let crate::config::Database::Sqlite(path) = &from {
        // Opening would create an empty database and copy nothing.
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
    }
    if from == to {
        bail!("--from and --to name the same database");
    }
    // The stores are synchronous; keep them off the async runtime's threads.
    let counts = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(String, usize)>> {
        let source = from.open().context("opening the source database")?;
        let target = to.open().context("opening the target database")?;
        let dump = source.export().context("reading the source database")?;
        target.import(&dump).context("writing the target database")?;
        Ok(dump.counts().into_iter().map(|(t, n)| (t.to_string(), n)).collect())
    })
    .await
    .context("the migration task failed")??;
    for (table, rows) in &counts {
        println!("{table}: {rows} rows");
    }
    println!(
        "migrated {} rows; start lightwelld with the new --database",
        counts.iter().map(|(_, n)| n).sum::<usize>()
    );
    Ok(())
}

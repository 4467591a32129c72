//! Restoring an artifact's data into a prepared database: the dry-run's throwaway clone.
//! The clone already has the reference schema (functions, triggers, roles, grants); only
//! the rows of the mutation surface come from the backup — one full artifact, or a chain
//! (its full artifact, then every increment in order, [`restore_chain_into`]). The
//! sha256 is checked before anything is decrypted, and the plaintext only ever flows
//! through a pipe.

use std::io::Read;
use std::path::Path;

use cutter_core::Fingerprint;
use cutter_pg::ConnConfig;

use crate::error::{Error, Result};
use crate::keys::{load_secret_key, PassphraseSource};
use crate::manifest::verify_artifact;
use crate::programs::PgProgram;
use crate::restore::{probe_key, stream_restore, Hints};
use crate::sandbox::{self, DataOnlyLoan, Selection};

/// The pg_restore arguments of a data-only restore into `dbname`. Run as the
/// unprivileged restore role, to which the surface tables are lent with their triggers
/// disabled (so foreign keys and the ledger's append-only trigger do not see a
/// half-loaded table); the restore adds `--use-list` with their data entries.
pub fn pg_restore_data_args(dbname: &str) -> Vec<String> {
    vec![
        format!("--dbname={dbname}"),
        "--no-password".into(),
        "--exit-on-error".into(),
        "--single-transaction".into(),
        "--data-only".into(),
        "--no-owner".into(),
        "--no-privileges".into(),
    ]
}

/// Verifies `artifact` (its manifest signed by the key `signing_pin` names, then its
/// sha256, through one descriptor), then decrypts it while streaming into
/// `pg_restore --data-only` against `conn` (a superuser of a throwaway server whose
/// database has the reference schema with empty tables). pg_restore runs as a fresh
/// unprivileged role that owns the database and, for the load, the surface's tables (their
/// triggers disabled); the superuser takes them back with their triggers enabled and
/// drops the role. Refuses a server whose system identifier is the backup's source.
/// `progress` is called with the artifact bytes decrypted so far. `pg_bindir` is where
/// pg_restore is (`None`: `pg_config --bindir`). Returns the plaintext bytes restored.
pub fn restore_data_into(
    artifact: &Path,
    signing_pin: &Fingerprint,
    secret_key: &Path,
    passphrase: &PassphraseSource,
    conn: &ConnConfig,
    pg_bindir: Option<&Path>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    let verified = verify_artifact(artifact, signing_pin)?;
    let secret = load_secret_key(secret_key)?;
    let passphrase = passphrase.read(&|k| std::env::var(k).ok())?;
    let mut admin = conn.connect().map_err(|e| Error::Connect {
        target: conn.redacted(),
        detail: e.to_string(),
    })?;
    let sysid = cutter_pg::surface::system_identifier(&mut admin).map_err(|source| Error::Pg {
        what: "reading the clone's system identifier",
        source,
    })?;
    if sysid == verified.manifest.server.system_identifier {
        return Err(Error::Connect {
            target: conn.redacted(),
            detail: format!(
                "it is the backup's source server (system identifier {sysid}); refusing to restore into it"
            ),
        });
    }
    probe_key(&verified, &secret, &passphrase)?;
    let pg_restore = PgProgram::resolve(None, pg_bindir, "pg_restore")?;
    let role = sandbox::create_role(&mut admin, conn.dbname())?;
    let loan = DataOnlyLoan::lend(&mut admin, &role)?;
    let as_role = conn.with_user(&role.name, Some(role.password.clone()));
    let restored = stream_restore(
        &verified,
        &secret,
        &passphrase,
        &pg_restore,
        &as_role,
        pg_restore_data_args(conn.dbname()),
        Selection::DataOnly,
        Hints {
            stopped: "the throwaway clone is discarded; nothing reached the target",
            failed: "the throwaway clone is discarded; nothing reached the target",
        },
        progress,
    );
    let back = loan.give_back(&mut admin, conn.dbname());
    match (restored, back) {
        (Ok(n), Ok(())) => Ok(n),
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Err(e), Err(b)) => {
            tracing::error!(error = %b, "taking the tables back from the restore role failed");
            Err(e)
        }
    }
}

/// [`restore_data_into`] for the chain ending at `head`: every link is verified first
/// ([`crate::verify_chain`]: signatures, SHA-256s, predecessor hashes, order), then the
/// full artifact is restored as [`restore_data_into`] does, then each increment is
/// applied in order as `conn`'s superuser (see `chainproof`), then every surface
/// table's id sequence is moved past the highest id restored. Returns the links
/// restored, the full backup first.
pub fn restore_chain_into(
    head: &Path,
    signing_pin: &Fingerprint,
    secret_key: &Path,
    passphrase: &PassphraseSource,
    conn: &ConnConfig,
    pg_bindir: Option<&Path>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<Vec<cutter_core::RunId>> {
    let links = crate::chainproof::verify_chain(head, signing_pin)?;
    restore_data_into(
        &links[0].path,
        signing_pin,
        secret_key,
        passphrase,
        conn,
        pg_bindir,
        progress,
    )?;
    if links.len() > 1 {
        let secret = load_secret_key(secret_key)?;
        let passphrase = passphrase.read(&|k| std::env::var(k).ok())?;
        for link in &links[1..] {
            crate::chainproof::apply_increment(conn, link, &secret, &passphrase)?;
        }
        advance_sequences(conn)?;
    }
    Ok(links.into_iter().map(|l| l.manifest.run_id).collect())
}

/// Moves each surface table's `id` sequence to at least the highest id it holds (an
/// increment carries rows, not sequence values).
fn advance_sequences(conn: &ConnConfig) -> Result<()> {
    let mut c = conn.connect().map_err(|e| Error::Connect {
        target: conn.redacted(),
        detail: e.to_string(),
    })?;
    for t in cutter_core::mutation_surface() {
        let q = t.quoted();
        let sql = format!(
            "SELECT pg_catalog.setval(s, m) FROM \
               (SELECT pg_catalog.pg_get_serial_sequence($1, 'id') AS s, \
                       (SELECT max(id) FROM {q}) AS m) x \
              WHERE s IS NOT NULL AND m IS NOT NULL"
        );
        c.query(sql.as_str(), &[&q])
            .map_err(|e| Error::sql(format!("advancing the id sequence of {t}"), e))?;
    }
    Ok(())
}

/// A reader that reports the bytes read so far: the progress of a restore, measured on
/// the artifact (whose size the manifest knows) rather than on the plaintext.
pub(crate) struct CountingReader<'a, R> {
    inner: R,
    read: u64,
    progress: &'a mut (dyn FnMut(u64) + Send),
}

impl<'a, R> CountingReader<'a, R> {
    pub(crate) fn new(inner: R, progress: &'a mut (dyn FnMut(u64) + Send)) -> Self {
        Self {
            inner,
            read: 0,
            progress,
        }
    }
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read);
        Ok(n)
    }
}

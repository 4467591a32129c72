//! Restoring an artifact's data into a prepared database: the dry-run's throwaway clone.
//! The clone already has the reference schema (functions, triggers, roles, grants); only
//! the rows of the mutation surface come from the backup. The sha256 is checked before
//! anything is decrypted, and the plaintext only ever flows through a pipe.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;

use cutter_pg::ConnConfig;

use crate::error::{Error, Result};
use crate::keys::{load_secret_key, PassphraseSource};
use crate::manifest::verify_artifact;
use crate::programs::{command, describe_status, ChildGuard, PgProgram, StderrCollector};

/// The pg_restore arguments of a data-only restore into `dbname` (run as a superuser of
/// a throwaway server: triggers are disabled while the rows load, so foreign keys and
/// the ledger's append-only trigger do not see a half-loaded table).
pub fn pg_restore_data_args(dbname: &str) -> Vec<String> {
    vec![
        format!("--dbname={dbname}"),
        "--no-password".into(),
        "--exit-on-error".into(),
        "--single-transaction".into(),
        "--data-only".into(),
        "--disable-triggers".into(),
        "--no-owner".into(),
        "--no-privileges".into(),
    ]
}

/// Verifies `artifact` against its manifest, then decrypts it while streaming into
/// `pg_restore --data-only` against `conn` (a superuser of a throwaway server whose
/// database has the reference schema with empty tables). Refuses a server whose system
/// identifier is the backup's source. `progress` is called with the artifact bytes
/// decrypted so far. `pg_bindir` is where pg_restore is (`None`: `pg_config --bindir`).
/// Returns the plaintext bytes restored.
pub fn restore_data_into(
    artifact: &Path,
    secret_key: &Path,
    passphrase: &PassphraseSource,
    conn: &ConnConfig,
    pg_bindir: Option<&Path>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    let manifest = verify_artifact(artifact)?.manifest;
    let secret = load_secret_key(secret_key)?;
    let passphrase = passphrase.read(&|k| std::env::var(k).ok())?;
    {
        let mut c = conn.connect().map_err(|e| Error::Connect {
            target: conn.redacted(),
            detail: e.to_string(),
        })?;
        let sysid = cutter_pg::surface::system_identifier(&mut c).map_err(|source| Error::Pg {
            what: "reading the clone's system identifier",
            source,
        })?;
        if sysid == manifest.server.system_identifier {
            return Err(Error::Connect {
                target: conn.redacted(),
                detail: format!(
                    "it is the backup's source server (system identifier {sysid}); refusing to restore into it"
                ),
            });
        }
    }
    let pg_restore = PgProgram::resolve(None, pg_bindir, "pg_restore")?;
    let env = conn.child_env().map_err(|e| Error::Connect {
        target: conn.redacted(),
        detail: format!("preparing pg_restore's environment: {e}"),
    })?;
    let mut cmd = command(&pg_restore.path);
    env.apply(&mut cmd);
    cmd.args(pg_restore_data_args(conn.dbname()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let program = pg_restore.path.display().to_string();
    let child = cmd.spawn().map_err(|e| Error::Program {
        program: program.clone(),
        problem: format!("cannot start it: {e}"),
    })?;
    let mut child = ChildGuard::new(child, program.clone());
    let stderr = child
        .child_mut()
        .stderr
        .take()
        .map(StderrCollector::spawn)
        .ok_or_else(|| Error::Program {
            program: program.clone(),
            problem: "no stderr pipe".into(),
        })?;
    let stdin = child
        .child_mut()
        .stdin
        .take()
        .ok_or_else(|| Error::Program {
            program: program.clone(),
            problem: "no stdin pipe".into(),
        })?;
    let file = File::open(artifact).map_err(|e| Error::io("opening", artifact, e))?;
    let file = CountingReader::new(file, progress);
    match cutter_openpgp::decrypt(&secret, &passphrase, file, stdin) {
        Ok(bytes) => {
            let status = child.wait()?;
            let text = stderr.finish();
            if status.success() {
                Ok(bytes)
            } else {
                Err(Error::ChildFailed {
                    program,
                    status: describe_status(status),
                    stderr: text,
                    hint: Some("the throwaway clone is discarded; nothing reached the target"),
                })
            }
        }
        Err(source) => {
            let _ = child.kill();
            let text = stderr.finish();
            if text.trim().is_empty() {
                Err(Error::Decrypt {
                    path: artifact.to_path_buf(),
                    source,
                })
            } else {
                Err(Error::ChildFailed {
                    program,
                    status: format!("stopped while decrypting ({source})"),
                    stderr: text,
                    hint: Some("the throwaway clone is discarded; nothing reached the target"),
                })
            }
        }
    }
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

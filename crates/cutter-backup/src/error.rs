//! The one error type of this crate. Each message says what failed, on what (file,
//! table, key fingerprint, program) and what the operator can do next. A child
//! program's stderr is folded into the error; secrets never are.

use std::io;
use std::path::PathBuf;

use cutter_core::{Fingerprint, Sha256Digest, SystemIdentifier};

use crate::restore::RestoreProof;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while taking, checking or restoring a backup.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The state directory (or the backups directory in it) is missing, not a
    /// directory, or not writable.
    #[error(
        "backup directory {}: {problem} ({source}); create it (`cutter init`) or fix its \
         permissions, then retry",
        path.display()
    )]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// An artifact or manifest of that name already exists; backups are never overwritten.
    #[error(
        "{} already exists; a backup is never overwritten. Use a new run id / name, or \
         move the old artifact away after checking it",
        path.display()
    )]
    ArtifactExists {
        /// The existing file.
        path: PathBuf,
    },

    /// No recipient fingerprint is configured.
    #[error(
        "no backup recipient fingerprint is configured: set [backup].recipient_fingerprint \
         or the environment variable BACKUP_GPG_FPR to the fingerprint of the backup \
         public key (`gpg --list-keys --with-colons` shows it on the fpr: line)"
    )]
    PinMissing,

    /// The configured pin is not a fingerprint.
    #[error("the pinned fingerprint from {origin} is not a fingerprint: {source}")]
    PinInvalid {
        /// Where it came from (config key or environment variable).
        origin: String,
        /// Why it was rejected.
        #[source]
        source: cutter_core::Error,
    },

    /// No recipient key file is configured.
    #[error(
        "no backup recipient public key is configured: set [backup].recipient_key to a file \
         holding the public key with fingerprint {pin} (`gpg --export --armor {pin}`)"
    )]
    RecipientKeyMissing {
        /// The pinned fingerprint.
        pin: Fingerprint,
    },

    /// A key file could not be read.
    #[error("cannot read the {what} file {}: {source}; check the configured path", path.display())]
    KeyFile {
        /// "recipient public key", "secret key", "passphrase".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The recipient key is unusable: unparsable, not the pinned key, or cannot encrypt.
    #[error("backup recipient key {}: {source}", path.display())]
    Recipient {
        /// The key file.
        path: PathBuf,
        /// What the OpenPGP layer said (names both fingerprints on a pin mismatch).
        #[source]
        source: cutter_openpgp::Error,
    },

    /// The secret key for a restore proof is unusable.
    #[error("backup secret key {}: {source}", path.display())]
    SecretKey {
        /// The key file.
        path: PathBuf,
        /// What the OpenPGP layer said.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// Generating a key pair failed.
    #[error("generating a backup key pair failed: {source}")]
    KeyGeneration {
        /// What the OpenPGP layer said.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// The passphrase could not be obtained.
    #[error("backup secret key passphrase: {problem}")]
    Passphrase {
        /// What is wrong (names the variable or file, never the value).
        problem: String,
    },

    /// A PostgreSQL program (`pg_config`, `pg_dump`, `pg_restore`) could not be found or run.
    #[error("{program}: {problem}")]
    Program {
        /// The program.
        program: String,
        /// What is wrong and what to do.
        problem: String,
    },

    /// The backup role cannot read the surface tables, or can write them.
    #[error("the backup role is not a usable read-only role: {}", problems.join("; "))]
    Role {
        /// What is wrong, and the GRANT or role that fixes it.
        problems: Vec<String>,
    },

    /// `pg_dump` is older than the server.
    #[error(
        "{} is version {client}, older than the server ({server}); pg_dump must be at least \
         the server's major version. Install PostgreSQL {server_major} client tools and make \
         `pg_config --bindir` (or the configured pg_dump) point at them",
        path.display()
    )]
    PgDumpTooOld {
        /// The pg_dump binary.
        path: PathBuf,
        /// Its version.
        client: String,
        /// The server's version.
        server: String,
        /// The server's major version.
        server_major: u32,
    },

    /// Connecting to PostgreSQL failed.
    #[error("connecting to PostgreSQL {target} failed: {detail}")]
    Connect {
        /// The server (redacted URL; no password).
        target: String,
        /// What went wrong.
        detail: String,
    },

    /// A SQL statement failed.
    #[error("{what} failed: {source}{}", sqlstate.as_ref().map(|s| format!(" (SQLSTATE {s})")).unwrap_or_default())]
    Sql {
        /// What was being done.
        what: String,
        /// The SQLSTATE, if the server sent one.
        sqlstate: Option<String>,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },

    /// A child program failed; its stderr is part of the message.
    #[error(
        "{program} failed ({status}); nothing was kept{}{}",
        hint.map(|h| format!("; {h}")).unwrap_or_default(),
        if stderr.trim().is_empty() { String::from("; it printed nothing on stderr") } else { format!(". Its stderr:\n{}", stderr.trim_end()) }
    )]
    ChildFailed {
        /// The program.
        program: String,
        /// Exit status as text ("exit status 1", "killed by signal 9").
        status: String,
        /// Its stderr (bounded).
        stderr: String,
        /// What to do next, if known.
        hint: Option<&'static str>,
    },

    /// The output of `pg_dump` is not a custom-format archive.
    #[error("{program} wrote {detail}; nothing was kept. Its stderr:\n{stderr}")]
    NotAnArchive {
        /// The program.
        program: String,
        /// What was found.
        detail: String,
        /// Its stderr (bounded).
        stderr: String,
    },

    /// Reading or writing a file failed (disk full, I/O error).
    #[error(
        "{action} {} failed: {source}{}",
        path.display(),
        if source.raw_os_error() == Some(28) || source.kind() == io::ErrorKind::StorageFull {
            "; the file system is full: free space (or point the state directory at a larger one) and retry; the partial file was removed"
        } else { "" }
    )]
    Io {
        /// "writing", "reading", "syncing", "renaming".
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Encrypting failed.
    #[error("encrypting the backup to {recipient} failed: {source}")]
    Encrypt {
        /// The recipient key.
        recipient: Fingerprint,
        /// What the OpenPGP layer said.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// A manifest is missing or not what this crate wrote.
    #[error("backup manifest {}: {problem}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// A secret file (secret key, passphrase) may be read or written by group or others.
    #[error(
        "the {what} file {} has mode {mode:04o}: group or others may access it, and a secret \
         file is never used then (as libpq refuses a loose ~/.pgpass). Make it private: \
         `chmod 600 {}` (owned by the user that runs cutter), then retry",
        path.display(),
        path.display()
    )]
    LooseSecretFile {
        /// "backup secret key", "backup signing key", "passphrase".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// No manifest signing key is pinned.
    #[error(
        "no backup signing key is pinned: set [backup].signing_fingerprint to the fingerprint \
         of the key that signs backup manifests (and [backup].signing_key, or \
         CUTTER_BACKUP_SIGNING_KEY, to its secret key file where backups are taken). \
         A manifest is only trusted when that key signed it"
    )]
    SigningPinMissing,

    /// The signing key cannot be used (wrong key, cannot sign, wrong passphrase).
    #[error("backup signing key {}: {problem}", path.display())]
    SigningKey {
        /// The secret key file.
        path: PathBuf,
        /// What is wrong and what to do.
        problem: String,
    },

    /// Signing a manifest failed.
    #[error("signing the backup manifest with key {fingerprint} failed: {source}")]
    Signing {
        /// The signing key.
        fingerprint: Fingerprint,
        /// What the OpenPGP layer said.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// A manifest has no signature.
    #[error(
        "backup manifest {} is not signed ({} is missing): an unsigned manifest is never \
         trusted, since anyone holding the backup's public key can make an artifact and a \
         manifest that match. Nothing was decrypted",
        path.display(),
        signature.display()
    )]
    ManifestUnsigned {
        /// The manifest.
        path: PathBuf,
        /// Where its signature should be.
        signature: PathBuf,
    },

    /// A manifest's signature does not verify against the pinned signing key.
    #[error(
        "backup manifest {} is not signed by the pinned backup signing key {pinned}: {problem}. \
         Nothing was decrypted; do not use this backup",
        path.display()
    )]
    ManifestSignature {
        /// The manifest.
        path: PathBuf,
        /// `[backup].signing_fingerprint`.
        pinned: Fingerprint,
        /// Why it does not verify.
        problem: String,
    },

    /// A backup chain is broken or inconsistent at a link.
    #[error(
        "backup chain broken at link {link:?}: {problem}. Restore from an earlier chain, or \
         take a full backup (`--full`) to start a new one"
    )]
    Chain {
        /// The link (backup name) concerned.
        link: String,
        /// What is wrong.
        problem: String,
    },

    /// A backup cannot be discarded: a later chain link needs it.
    #[error(
        "refusing to discard backup {name}: {later} needs it ({detail}); discarding it would \
         leave {later} and every link after it impossible to restore. Keep it, or first take \
         a full backup (`cutter backup create --full`) so that new links no longer need \
         this chain, remove {later} and the links after it (`cutter backup prune`), then run \
         the compensation again"
    )]
    StillNeeded {
        /// The backup to discard.
        name: String,
        /// The later link that names it.
        later: String,
        /// How it names it.
        detail: String,
    },

    /// A proof record is present but cannot be trusted.
    #[error(
        "proof record {} cannot be trusted: {problem}. It does not count as a proof; remove \
         it (and its .sig) and prove the backup again (`cutter backup restore-proof`, \
         `--chain` for an increment)",
        path.display()
    )]
    ProofRecord {
        /// The record.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// The artifact's bytes changed between the sha256 check and the end of decryption.
    #[error(
        "backup artifact {} changed while it was read: its sha256 was {expected} when it was \
         checked, but the bytes decrypted hash to {actual}. The restore was discarded; find \
         out what writes to the backups directory",
        path.display()
    )]
    ArtifactChanged {
        /// The artifact.
        path: PathBuf,
        /// sha256 verified against the manifest.
        expected: Sha256Digest,
        /// sha256 of what was decrypted.
        actual: Sha256Digest,
    },

    /// The archive holds an entry the restore refuses (not part of the surface tables, or a
    /// COPY statement that is not a plain `COPY … FROM stdin`).
    #[error("the archive in {} is refused before pg_restore runs: {problem}", path.display())]
    ArchiveRefused {
        /// The artifact.
        path: PathBuf,
        /// What was found.
        problem: String,
    },

    /// The artifact does not match its manifest: nothing was decrypted.
    #[error(
        "backup artifact {} does not match its manifest: sha256 {actual} ({actual_size} bytes), \
         manifest says {expected} ({expected_size} bytes); the artifact is damaged or was \
         replaced. Nothing was decrypted; do not use it",
        path.display()
    )]
    ChecksumMismatch {
        /// The artifact.
        path: PathBuf,
        /// sha256 from the manifest.
        expected: Sha256Digest,
        /// sha256 of the file.
        actual: Sha256Digest,
        /// Size from the manifest.
        expected_size: u64,
        /// Size of the file.
        actual_size: u64,
    },

    /// Decrypting failed (wrong key, wrong passphrase, damaged data).
    #[error("decrypting {} failed: {source}", path.display())]
    Decrypt {
        /// The artifact.
        path: PathBuf,
        /// What the OpenPGP layer said.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// The restore target is the source server itself.
    #[error(
        "refusing to restore into the server with system identifier {system_identifier}: \
         it is the server the backup was taken from. A restore proof only ever restores \
         into a throwaway server"
    )]
    SameServer {
        /// The shared system identifier.
        system_identifier: SystemIdentifier,
    },

    /// A PostgreSQL operation of `cutter-pg` failed.
    #[error("{what} failed: {source}")]
    Pg {
        /// What was being done.
        what: &'static str,
        /// The adapter's error (keeps the SQLSTATE).
        #[source]
        source: cutter_pg::Error,
    },

    /// The digest taken from the dump stream differs from the server's (a bug).
    #[error(
        "the content digest taken from the dump stream differs from the server's: {detail}; \
         this is a bug in cutter: report it, and take backups with digests computed on the \
         server meanwhile"
    )]
    DigestMismatch {
        /// Which table, and both values.
        detail: String,
    },

    /// The throwaway cluster or the reference schema could not be set up.
    #[error("restore proof: {what} failed: {detail}")]
    Throwaway {
        /// What was being done.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },

    /// The restore proof's record already exists; it is never overwritten.
    #[error(
        "restore proof record {} already exists and is never overwritten; nothing was \
         restored. Read it (it records an earlier proof of this artifact), move it away, \
         then run the proof again",
        path.display()
    )]
    RecordExists {
        /// The existing record.
        path: PathBuf,
    },

    /// The restored data does not equal the manifest. The proof record says where.
    #[error("restore proof of {} FAILED: {}", proof.artifact, proof.failures.join("; "))]
    ProofFailed {
        /// The complete proof record (also written as JSON when configured).
        proof: Box<RestoreProof>,
    },
}

impl Error {
    pub(crate) fn sql(what: impl Into<String>, source: postgres::Error) -> Self {
        Error::Sql {
            what: what.into(),
            sqlstate: source.code().map(|c| c.code().to_string()),
            source,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<cutter_fs::Error> for Error {
    fn from(e: cutter_fs::Error) -> Self {
        match e {
            cutter_fs::Error::Exists { path } => Error::ArtifactExists { path },
            cutter_fs::Error::Dir {
                path,
                problem,
                source,
            } => Error::StateDir {
                path,
                problem,
                source,
            },
            cutter_fs::Error::Io {
                action,
                path,
                source,
            } => Error::io(action, path, source),
        }
    }
}

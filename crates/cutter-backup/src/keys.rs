//! The backup keys: the pinned recipient public key (the pin comes from the
//! configuration or `BACKUP_GPG_FPR`), the secret key and passphrase a restore proof
//! needs (passphrase from an environment variable or a file, never from the command
//! line), the pinned key that signs manifests ([`ManifestSigner`]), and key generation
//! for tests and the demo.
//!
//! Secret files (secret keys, passphrase files) are refused when group or others may
//! access them, as libpq refuses a loose `~/.pgpass`; the mode is read from the file
//! descriptor the secret is then read through.

use std::fmt;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cutter_core::Fingerprint;
use cutter_openpgp::{Passphrase, PublicKey, Recipient, SecretKey};

use crate::error::{Error, Result};
use cutter_fs::Replace;

/// The environment variable holding the recipient fingerprint (seed name).
pub const PIN_ENV: &str = "BACKUP_GPG_FPR";

/// The pinned recipient fingerprint: `configured` (from the config file) if given, else
/// the environment variable [`PIN_ENV`] as read by `env`. If both are set they must
/// agree.
pub fn recipient_pin(
    configured: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Fingerprint> {
    let parse = |origin: &str, v: &str| {
        Fingerprint::new(v).map_err(|source| Error::PinInvalid {
            origin: origin.into(),
            source,
        })
    };
    let from_env = env(PIN_ENV)
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse(PIN_ENV, &v))
        .transpose()?;
    let from_config = configured
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse("[backup].recipient_fingerprint", v))
        .transpose()?;
    match (from_config, from_env) {
        (Some(c), Some(e)) if c != e => Err(Error::PinInvalid {
            origin: format!("[backup].recipient_fingerprint and {PIN_ENV}"),
            source: cutter_core::Error::InvalidId {
                kind: "recipient fingerprint",
                value: format!("{c} vs {e}"),
                rule: "both settings to name the same key (or only one to be set)".into(),
            },
        }),
        (Some(c), _) => Ok(c),
        (None, Some(e)) => Ok(e),
        (None, None) => Err(Error::PinMissing),
    }
}

/// Reads the recipient public key from `path` (armored or binary) and accepts it only if
/// its primary fingerprint is `pin` and it can encrypt now.
pub fn load_recipient(path: &Path, pin: &Fingerprint) -> Result<Recipient> {
    let bytes = fs::read(path).map_err(|source| Error::KeyFile {
        what: "recipient public key",
        path: path.to_path_buf(),
        source,
    })?;
    let key = PublicKey::from_bytes(&bytes).map_err(|source| Error::Recipient {
        path: path.to_path_buf(),
        source,
    })?;
    Recipient::pinned(key, pin).map_err(|source| Error::Recipient {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads an OpenPGP secret key (armored or binary) from `path`, refusing a file that
/// group or others may access ([`Error::LooseSecretFile`]).
pub fn load_secret_key(path: &Path) -> Result<SecretKey> {
    load_secret_key_as(path, "backup secret key")
}

/// [`load_secret_key`] for another key (`what` names it in errors): a private file only,
/// refused when group or others may access it.
pub fn load_secret_key_as(path: &Path, what: &'static str) -> Result<SecretKey> {
    let bytes = read_private(path, what)?;
    SecretKey::from_bytes(&bytes).map_err(|source| Error::SecretKey {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a secret file whole, refusing it if group or others may access it. The mode
/// is that of the open file, so the file checked is the file read.
fn read_private(path: &Path, what: &'static str) -> Result<Wiped> {
    let key_file = |source| Error::KeyFile {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(key_file)?;
    let mode = f.metadata().map_err(key_file)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::LooseSecretFile {
            what,
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let mut bytes = Wiped(Vec::new());
    f.read_to_end(&mut bytes.0).map_err(key_file)?;
    Ok(bytes)
}

/// The environment variable naming the manifest signing key's secret key file (the
/// counterpart of `[backup].signing_key`; where both are set they must agree).
pub const SIGNING_KEY_ENV: &str = "CUTTER_BACKUP_SIGNING_KEY";

/// The environment variable holding the signing key's passphrase, if it has one.
pub const SIGNING_PASSPHRASE_ENV: &str = "CUTTER_BACKUP_SIGNING_PASSPHRASE";

/// The key that signs backup manifests: a secret key whose primary fingerprint is the
/// pin (`[backup].signing_fingerprint`) and which can sign now. The signature covers
/// the whole manifest (artifact sha256 and size, tables, counts and digests, snapshot,
/// versions, run id, database), so a manifest is trusted only when this key made it.
/// `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct ManifestSigner {
    key: SecretKey,
    passphrase: Passphrase,
    public_armored: String,
}

impl ManifestSigner {
    /// Loads the signing key from `path` (a private file: see [`load_secret_key`]),
    /// requires its primary fingerprint to be `pin`, and makes one test signature, so a
    /// key that cannot sign or a wrong passphrase is refused before any backup starts.
    pub fn load(path: &Path, pin: &Fingerprint, passphrase: &PassphraseSource) -> Result<Self> {
        let problem = |problem: String| Error::SigningKey {
            path: path.to_path_buf(),
            problem,
        };
        let bytes = read_private(path, "backup signing key")?;
        let key = SecretKey::from_bytes(&bytes).map_err(|e| problem(e.to_string()))?;
        let actual = key.fingerprint();
        if &actual != pin {
            return Err(problem(format!(
                "it is key {actual}, but [backup].signing_fingerprint pins {pin}; configure \
                 the secret key of the pinned signing key (or pin this one)"
            )));
        }
        let passphrase = passphrase.read(&|k| std::env::var(k).ok())?;
        cutter_openpgp::sign_detached(&key, &passphrase, b"cutter backup signing probe")
            .map_err(|e| problem(format!("it cannot sign: {e}")))?;
        let public_armored = key
            .public_key()
            .to_armored()
            .map_err(|e| problem(e.to_string()))?;
        Ok(Self {
            key,
            passphrase,
            public_armored,
        })
    }

    /// The signing key's primary fingerprint (the pin).
    pub fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint()
    }

    /// The public key, armored (recorded in the manifest, checked against the pin).
    pub fn public_key_armored(&self) -> &str {
        &self.public_armored
    }

    /// An armored detached signature over `data`.
    pub(crate) fn sign(&self, data: &[u8]) -> Result<String> {
        cutter_openpgp::sign_detached(&self.key, &self.passphrase, data).map_err(|source| {
            Error::Signing {
                fingerprint: self.key.fingerprint(),
                source,
            }
        })
    }
}

impl fmt::Debug for ManifestSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestSigner")
            .field("fingerprint", &self.key.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The pinned signing fingerprint from `[backup].signing_fingerprint`.
pub fn signing_pin(configured: Option<&str>) -> Result<Fingerprint> {
    let v = configured
        .filter(|v| !v.trim().is_empty())
        .ok_or(Error::SigningPinMissing)?;
    Fingerprint::new(v).map_err(|source| Error::PinInvalid {
        origin: "[backup].signing_fingerprint".into(),
        source,
    })
}

/// Bytes wiped when dropped.
struct Wiped(Vec<u8>);

impl std::ops::Deref for Wiped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // Volatile-free best effort; the allocation is freed right after.
            *b = 0;
        }
        std::hint::black_box(&self.0);
    }
}

/// Where the secret key's passphrase comes from. Never the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassphraseSource {
    /// The key is not protected.
    None,
    /// The value of this environment variable (e.g. `CUTTER_BACKUP_PASSPHRASE`).
    Env(String),
    /// The first line of this file (e.g. `[backup].passphrase_file`).
    File(PathBuf),
}

impl PassphraseSource {
    /// Reads the passphrase. `env` looks up environment variables. Errors name the
    /// variable or file, never the value.
    pub fn read(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Passphrase> {
        match self {
            PassphraseSource::None => Ok(Passphrase::new(String::new())),
            PassphraseSource::Env(var) => {
                env(var)
                    .map(Passphrase::new)
                    .ok_or_else(|| Error::Passphrase {
                        problem: format!(
                            "the environment variable {var} is not set; set it (or configure \
                         a passphrase file)"
                        ),
                    })
            }
            PassphraseSource::File(path) => {
                let bytes = read_private(path, "passphrase")?;
                let text = std::str::from_utf8(&bytes).map_err(|_| Error::Passphrase {
                    problem: format!("the file {} is not UTF-8 text", path.display()),
                })?;
                let line = text.lines().next().unwrap_or("");
                Ok(Passphrase::new(line.to_string()))
            }
        }
    }
}

/// A key pair made by [`generate_keys`], written to files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedKeyFiles {
    /// The primary fingerprint (the pin).
    pub fingerprint: Fingerprint,
    /// The ASCII-armored public key.
    pub public_key: PathBuf,
    /// The ASCII-armored secret key (mode 0600), protected by the passphrase if given.
    pub secret_key: PathBuf,
}

/// Generates a backup key pair GnuPG 2.2 accepts (Ed25519 primary, Curve25519
/// encryption subkey) and writes `<stem>.pub.asc` and `<stem>.sec.asc` (mode 0600) into
/// `dir`, refusing to overwrite. For tests and the demo; production keys are made and
/// kept by the operator.
pub fn generate_keys(
    dir: &Path,
    stem: &str,
    user_id: &str,
    passphrase: Option<&Passphrase>,
) -> Result<GeneratedKeyFiles> {
    let g = cutter_openpgp::generate_key(user_id, passphrase)
        .map_err(|source| Error::KeyGeneration { source })?;
    let secret_key = dir.join(format!("{stem}.sec.asc"));
    cutter_fs::write(&secret_key, g.secret_armored.as_bytes(), Replace::No)?;
    let public_key = dir.join(format!("{stem}.pub.asc"));
    cutter_fs::write(&public_key, g.public_armored.as_bytes(), Replace::No)?;
    Ok(GeneratedKeyFiles {
        fingerprint: g.fingerprint,
        public_key,
        secret_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const FPR: &str = "0123456789ABCDEF0123456789ABCDEF01234567";

    #[test]
    fn pin_from_config_or_env() {
        let none = |_: &str| None;
        assert!(matches!(recipient_pin(None, &none), Err(Error::PinMissing)));
        let env = |k: &str| (k == PIN_ENV).then(|| FPR.to_lowercase());
        assert_eq!(recipient_pin(None, &env).unwrap().as_str(), FPR);
        assert_eq!(recipient_pin(Some(FPR), &none).unwrap().as_str(), FPR);
        assert_eq!(recipient_pin(Some(FPR), &env).unwrap().as_str(), FPR);
        let other = |_: &str| Some("F".repeat(40));
        let err = recipient_pin(Some(FPR), &other).unwrap_err();
        assert!(err.to_string().contains("same key"), "{err}");
        let bad = recipient_pin(Some("abc"), &none).unwrap_err();
        assert!(matches!(bad, Error::PinInvalid { .. }), "{bad}");
    }

    #[test]
    fn passphrase_sources_never_echo_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pass");
        fs::write(&f, "s3cret-pass\nignored\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let p = PassphraseSource::File(f.clone()).read(&|_| None).unwrap();
        assert!(!format!("{p:?}").contains("s3cret"));
        let env = |k: &str| (k == "PP").then(|| "s3cret-pass".to_string());
        assert!(PassphraseSource::Env("PP".into()).read(&env).is_ok());
        let err = PassphraseSource::Env("NOPE".into())
            .read(&env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("NOPE") && !err.contains("s3cret"), "{err}");
        let err = PassphraseSource::File(dir.path().join("missing"))
            .read(&env)
            .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    /// Secret files that group or others may access are refused, as libpq refuses a
    /// loose `~/.pgpass`, with a message that says how to fix it; 0600 and 0400 are fine.
    #[test]
    fn loose_secret_files_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let k = generate_keys(dir.path(), "b", "B <b@example.org>", None).unwrap();
        let pass = dir.path().join("pass");
        fs::write(&pass, "pw\n").unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660, 0o602, 0o610] {
            for (path, what) in [(&k.secret_key, "backup secret key"), (&pass, "passphrase")] {
                fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
                let err = match what {
                    "passphrase" => PassphraseSource::File(path.clone())
                        .read(&|_| None)
                        .map(|_| ())
                        .unwrap_err(),
                    _ => load_secret_key(path).map(|_| ()).unwrap_err(),
                };
                assert!(matches!(err, Error::LooseSecretFile { .. }), "{err}");
                let text = err.to_string();
                assert!(
                    text.contains(&format!("mode {mode:04o}"))
                        && text.contains(&format!("chmod 600 {}", path.display()))
                        && text.contains(what),
                    "{text}"
                );
            }
            fs::set_permissions(&k.secret_key, fs::Permissions::from_mode(mode)).unwrap();
            let err = ManifestSigner::load(&k.secret_key, &k.fingerprint, &PassphraseSource::None)
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::LooseSecretFile {
                        what: "backup signing key",
                        ..
                    }
                ),
                "{err}"
            );
        }
        for mode in [0o600, 0o400] {
            fs::set_permissions(&k.secret_key, fs::Permissions::from_mode(mode)).unwrap();
            fs::set_permissions(&pass, fs::Permissions::from_mode(mode)).unwrap();
            load_secret_key(&k.secret_key).unwrap();
            PassphraseSource::File(pass.clone())
                .read(&|_| None)
                .unwrap();
            ManifestSigner::load(&k.secret_key, &k.fingerprint, &PassphraseSource::None).unwrap();
        }
    }

    #[test]
    fn the_signing_key_must_be_the_pinned_one_and_able_to_sign() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Passphrase::new("pw".into());
        let k = generate_keys(dir.path(), "s", "S <s@example.org>", Some(&pw)).unwrap();
        let other = Fingerprint::new(&"B".repeat(40)).unwrap();
        let err = ManifestSigner::load(&k.secret_key, &other, &PassphraseSource::None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pins BBBB") && err.contains(k.fingerprint.as_str()),
            "{err}"
        );
        // A protected key without its passphrase cannot sign.
        let err = ManifestSigner::load(&k.secret_key, &k.fingerprint, &PassphraseSource::None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot sign"), "{err}");
        let var = format!("CUTTER_TEST_SIGNING_PW_{}", std::process::id());
        let env = |key: &str| (key == var).then(|| "pw".to_string());
        let p = PassphraseSource::Env(var.clone()).read(&env).unwrap();
        assert!(
            cutter_openpgp::sign_detached(&load_secret_key(&k.secret_key).unwrap(), &p, b"x")
                .is_ok()
        );
        assert!(matches!(signing_pin(None), Err(Error::SigningPinMissing)));
        assert!(matches!(
            signing_pin(Some("xyz")),
            Err(Error::PinInvalid { .. })
        ));
    }

    #[test]
    fn generated_keys_load_and_pin() {
        let dir = tempfile::tempdir().unwrap();
        let pass = Passphrase::new("pw".into());
        let k = generate_keys(dir.path(), "backup", "Backup <b@example.org>", Some(&pass)).unwrap();
        let mode = fs::metadata(&k.secret_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "secret key must be private: {mode:o}");
        let r = load_recipient(&k.public_key, &k.fingerprint).unwrap();
        assert_eq!(r.fingerprint(), k.fingerprint);
        let wrong = Fingerprint::new(&"A".repeat(40)).unwrap();
        let err = load_recipient(&k.public_key, &wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match the pinned"), "{err}");
        let s = load_secret_key(&k.secret_key).unwrap();
        assert_eq!(s.fingerprint(), k.fingerprint);
        assert!(matches!(
            generate_keys(dir.path(), "backup", "x", None),
            Err(Error::ArtifactExists { .. })
        ));
    }
}

//! The passphrase protecting a secret key.

use std::fmt;

use zeroize::Zeroizing;

/// A passphrase for a secret key. Its text never appears in `Debug` or `Display`
/// output, and its memory is wiped when it is dropped.
///
/// Where the passphrase comes from (environment variable, file, prompt) is the
/// caller's business; this type only carries it.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps `secret`; the `String` is moved in, not copied.
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// Whether the passphrase is the empty string (an unprotected key).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The passphrase in the form rpgp takes (a zeroizing copy).
    pub(crate) fn to_pgp(&self) -> pgp::types::Password {
        pgp::types::Password::from(self.0.as_bytes())
    }

    /// The passphrase text, for rpgp's key generation parameters.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Passphrase {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

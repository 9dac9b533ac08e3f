//! Secrets at rest and in memory. Device SIP secrets must be recoverable (deskline answers a phone's
//! digest challenge to its NOTIFY with them, in the phone's own realm), so they are encrypted with
//! ChaCha20-Poly1305 under a key kept in `DATA_DIR/secrets.key` (mode 0600), never stored in clear.
//! User login passwords are only ever verified, so they are argon2id hashes.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// A random secret of 24 URL-safe characters (144 bits).
    pub fn generate() -> Secret {
        let mut bytes = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut bytes);
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("secret key file {0} is not 32 bytes")]
    BadKey(String),
    #[error("an encrypted secret could not be decrypted (wrong key or corrupt record)")]
    Decrypt,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Encrypts and decrypts device secrets.
pub struct SecretCipher {
    cipher: ChaCha20Poly1305,
}

impl SecretCipher {
    /// Loads `DATA_DIR/secrets.key`, creating it (mode 0600) on first start.
    pub fn open(data_dir: &Path) -> Result<SecretCipher, SecretError> {
        let path = data_dir.join("secrets.key");
        let name = path.display().to_string();
        let key = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|e| SecretError::KeyFile(name.clone(), e))?;
                f.write_all(&key).and_then(|_| f.sync_all()).map_err(|e| SecretError::KeyFile(name.clone(), e))?;
                key
            }
            Err(e) => return Err(SecretError::KeyFile(name, e)),
        };
        if key.len() != 32 {
            return Err(SecretError::BadKey(name));
        }
        Ok(SecretCipher { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) })
    }

    /// base64(nonce ‖ ciphertext).
    pub fn encrypt(&self, secret: &Secret) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), secret.expose().as_bytes())
            .expect("ChaCha20-Poly1305 encryption of a short buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    pub fn decrypt(&self, sealed: &str) -> Result<Secret, SecretError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(sealed).map_err(|_| SecretError::Decrypt)?;
        if bytes.len() < 12 {
            return Err(SecretError::Decrypt);
        }
        let (nonce, body) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), body).map_err(|_| SecretError::Decrypt)?;
        String::from_utf8(plain).map(Secret).map_err(|_| SecretError::Decrypt)
    }
}

/// argon2id hash in PHC string form. Slow on purpose (tens of ms): call from `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Checks a password against a PHC hash; false for a malformed hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn encrypts_and_decrypts_with_a_0600_key() {
        let dir = tempfile::tempdir().unwrap();
        let c = SecretCipher::open(dir.path()).unwrap();
        let s = Secret::new("hunter2");
        let sealed = c.encrypt(&s);
        assert!(!sealed.contains("hunter2"));
        assert_eq!(c.decrypt(&sealed).unwrap(), s);
        let again = SecretCipher::open(dir.path()).unwrap();
        assert_eq!(again.decrypt(&sealed).unwrap(), s);
        let mode = std::fs::metadata(dir.path().join("secrets.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }
}

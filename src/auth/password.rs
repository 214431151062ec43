//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! which are the argon2 crate's defaults.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{Error, FieldError, Result};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the stored hash. A malformed stored hash never matches.
pub fn verify(password: &str, stored_hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored_hash)
        .is_ok()
}

/// Verifies against a fixed hash so that a login for an unknown user costs as much as one for a
/// known user, and timing does not reveal which usernames exist.
pub fn burn_time(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("diemdanh-dummy-password").unwrap_or_default());
    verify(password, dummy);
}

/// Password policy: at least 8 characters, at most 1 KiB.
pub fn check_strength(field: &str, password: &str) -> Result<()> {
    let problem = if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("must be at most {MAX_PASSWORD_BYTES} bytes"))
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::invalid(vec![FieldError::new(
            field,
            "weak_password",
            message,
        )])),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password() {
        let stored = hash("mật khẩu dài").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("mật khẩu dài", &stored));
        assert!(!verify("mat khau dai", &stored));
        assert!(!verify("anything", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_strength("password", "1234567").is_err());
        assert!(check_strength("password", "12345678").is_ok());
    }
}

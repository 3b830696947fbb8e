//! Password hashing (argon2id) and the password policy check.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use lightwell_proto::ErrorCode;
use zeroize::Zeroizing;

use crate::policy::PasswordPolicy;
use crate::{Error, Result};

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash(password: &str) -> Result<String> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(Error::internal)
}

/// Verifies a password against a PHC string. Malformed hashes never verify.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Checks a candidate password against the policy; the error says which rule failed.
pub fn check_policy(policy: &PasswordPolicy, user_name: &str, password: &str) -> Result<()> {
    let weak = |why: &str| Err(Error::new(ErrorCode::WeakPassword, format!("password {why}")));
    let len = password.chars().count();
    if len < policy.min_length {
        return weak(&format!("must be at least {} characters", policy.min_length));
    }
    if len > policy.max_length {
        return weak(&format!("must be at most {} characters", policy.max_length));
    }
    if policy.require_upper && !password.chars().any(char::is_uppercase) {
        return weak("needs an upper-case letter");
    }
    if policy.require_lower && !password.chars().any(char::is_lowercase) {
        return weak("needs a lower-case letter");
    }
    if policy.require_digit && !password.chars().any(|c| c.is_ascii_digit()) {
        return weak("needs a digit");
    }
    if policy.require_special && !password.chars().any(|c| !c.is_alphanumeric()) {
        return weak("needs a special character");
    }
    if !user_name.is_empty() && password.to_lowercase().contains(&user_name.to_lowercase()) {
        return weak("must not contain the user name");
    }
    Ok(())
}

/// Generates a random password that satisfies the default policy (24 characters).
pub fn generate() -> Result<Zeroizing<String>> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!@%+=";
    loop {
        let bytes = Zeroizing::new(lightwell_ca::random::bytes::<24>().map_err(Error::internal)?);
        let pw: Zeroizing<String> =
            Zeroizing::new(bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect());
        if check_policy(&PasswordPolicy::default(), "", &pw).is_ok() {
            return Ok(pw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("Correct-Horse-1").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Correct-Horse-1", &h));
        assert!(!verify("correct-horse-1", &h));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn policy_names_the_rule_that_failed() {
        let p = PasswordPolicy::default();
        let cases = [
            ("Sh0rt!", "at least 8"),
            ("alllower1!", "upper-case"),
            ("ALLUPPER1!", "lower-case"),
            ("NoDigits!!", "digit"),
            ("NoSpecial11", "special"),
            ("xAlice-2024", "user name"),
        ];
        for (pw, why) in cases {
            let e = check_policy(&p, "alice", pw).unwrap_err();
            assert_eq!(e.code, ErrorCode::WeakPassword);
            assert!(e.message.contains(why), "{pw}: {}", e.message);
        }
        check_policy(&p, "alice", "Str0ng-Pass").unwrap();
    }

    #[test]
    fn generated_passwords_satisfy_the_policy() {
        for _ in 0..20 {
            let pw = generate().unwrap();
            check_policy(&PasswordPolicy::default(), "administrator", &pw).unwrap();
        }
    }
}

//! The request token (`X-Aws-Parameters-Secrets-Token`, the function's `AWS_SESSION_TOKEN`),
//! compared in constant time: how long a refusal takes says nothing about how much of a guess
//! was right.

/// The header every request carries, as AWS's extension names it.
pub const HEADER: &str = "X-Aws-Parameters-Secrets-Token";

pub struct Token(Vec<u8>);

impl Token {
    pub fn new(value: String) -> Token {
        Token(value.into_bytes())
    }

    /// Whether `offered` is the token. Every byte of the longer of the two is looked at, whatever
    /// differs first; a length mismatch only flips the result.
    pub fn matches(&self, offered: &[u8]) -> bool {
        let expected = &self.0;
        let mut diff = u8::from(expected.len() != offered.len());
        for i in 0..expected.len().max(offered.len()) {
            let a = expected.get(i).copied().unwrap_or(0);
            let b = offered.get(i).copied().unwrap_or(0);
            diff |= a ^ b;
        }
        std::hint::black_box(diff) == 0 && !expected.is_empty()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_token_matches() {
        let token = Token::new("abc123".to_owned());
        assert!(token.matches(b"abc123"));
        for wrong in [&b""[..], b"abc12", b"abc1234", b"abc124", b"ABC123", b"\0bc123"] {
            assert!(!token.matches(wrong), "{wrong:?}");
        }
        assert!(!Token::new(String::new()).matches(b""), "an empty token never matches");
        assert_eq!(format!("{token:?}"), "Token(..)");
    }
}

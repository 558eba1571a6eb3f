//! Credentials as clients present them: an `Authorization` value (HTTP header
//! or gRPC metadata), or a PostgreSQL password. Parsing lives here once, for
//! the catalog and every gateway endpoint; checking the secret is theirs.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Standard base64 with or without its `=` padding: ADBC and other clients
/// send Basic credentials unpadded.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A presented credential.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <secret>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:secret)` (Flight SQL's handshake); the
    /// user name is informative, the secret decides.
    Basic { user: String, secret: String },
    /// A PostgreSQL password message.
    Password(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::Basic { user, .. } => write!(f, "Basic({user}:***)"),
            Self::Password(_) => f.write_str("Password(***)"),
        }
    }
}

impl Credential {
    /// Parses an `Authorization` value: `Bearer <secret>` or `Basic
    /// base64(user:secret)` (schemes case-insensitive); `None` for anything else.
    pub fn from_authorization(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return (!rest.is_empty()).then(|| Self::Bearer(rest.to_string()));
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = String::from_utf8(BASE64.decode(rest).ok()?).ok()?;
            let (user, secret) = decoded.split_once(':').unwrap_or(("", decoded.as_str()));
            return Some(Self::Basic {
                user: user.to_string(),
                secret: secret.to_string(),
            });
        }
        None
    }

    /// The secret to check: an API key.
    pub fn secret(&self) -> &str {
        match self {
            Self::Bearer(secret) | Self::Basic { secret, .. } | Self::Password(secret) => secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_padded_or_not() {
        assert_eq!(
            Credential::from_authorization("bearer  tsk_a_b ").map(|c| c.secret().to_string()),
            Some("tsk_a_b".into())
        );
        // "me:key12" is 8 bytes: padded base64 ends in "=", ADBC sends it without.
        for encoded in ["bWU6a2V5MTI=", "bWU6a2V5MTI"] {
            let parsed = Credential::from_authorization(&format!("Basic {encoded}")).expect(encoded);
            assert_eq!(
                parsed,
                Credential::Basic {
                    user: "me".into(),
                    secret: "key12".into()
                }
            );
        }
        assert_eq!(Credential::from_authorization("Bearer"), None);
        assert_eq!(Credential::from_authorization("Token x"), None);
        assert_eq!(Credential::from_authorization("Basic %%%"), None);
        assert_eq!(format!("{:?}", Credential::Bearer("s".into())), "Bearer(***)");
    }
}

//! The signature of a notification: HMAC-SHA256 of the raw body with the
//! shared secret, sent as `X-Hub-Signature-256: sha256=<hex>` (GitHub's
//! webhook convention, so existing senders and tools fit). Checked in
//! constant time (`ring::hmac::verify`).

use ring::hmac;

use super::Secret;

/// The header carrying the signature.
pub const HEADER: &str = "X-Hub-Signature-256";

/// Why a request's signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No signature header.
    #[error("no X-Hub-Signature-256 header (unsigned)")]
    Missing,
    /// Not `sha256=` and 64 hex digits.
    #[error("the X-Hub-Signature-256 header is not sha256=<64 hex digits>")]
    Malformed,
    /// Well-formed, but not the body's signature with our secret.
    #[error("wrong signature (another secret, or the body was changed)")]
    Wrong,
}

fn key(secret: &Secret) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.bytes())
}

/// The header value for `body`: `sha256=<hex>`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(hmac::sign(&key(secret), body).as_ref())
    )
}

/// Check the header value `header` (`None`: absent) against `body`.
pub fn verify(secret: &Secret, body: &[u8], header: Option<&str>) -> Result<(), Error> {
    let value = header.ok_or(Error::Missing)?.trim();
    let digits = value
        .strip_prefix("sha256=")
        .filter(|d| d.len() == 64)
        .ok_or(Error::Malformed)?;
    let tag = hex::decode(digits).map_err(|_| Error::Malformed)?;
    hmac::verify(&key(secret), body, &tag).map_err(|_| Error::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn github_documents_this_signature() {
        // The example of GitHub's "Validating webhook deliveries".
        let s = secret("It's a Secret to Everybody");
        let sig = sign(&s, b"Hello, World!");
        assert_eq!(
            sig,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
        assert_eq!(verify(&s, b"Hello, World!", Some(&sig)), Ok(()));
        assert_eq!(
            verify(
                &s,
                b"Hello, World!",
                Some(&sig.to_uppercase().replace("SHA256", "sha256"))
            ),
            Ok(()),
            "hex digits in either case"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let s = secret("k");
        let sig = sign(&s, b"/a.git\n");
        assert_eq!(verify(&s, b"/a.git\n", None), Err(Error::Missing));
        assert_eq!(verify(&s, b"/b.git\n", Some(&sig)), Err(Error::Wrong));
        assert_eq!(
            verify(&secret("other"), b"/a.git\n", Some(&sig)),
            Err(Error::Wrong)
        );
        assert_eq!(
            verify(&s, b"/a.git\n", Some(&sig.replace("sha256=", "sha1="))),
            Err(Error::Malformed)
        );
        assert_eq!(
            verify(&s, b"/a.git\n", Some(&sig[..40])),
            Err(Error::Malformed)
        );
        assert_eq!(
            verify(
                &s,
                b"/a.git\n",
                Some(&format!("sha256={}", "zz".repeat(32)))
            ),
            Err(Error::Malformed)
        );
    }
}

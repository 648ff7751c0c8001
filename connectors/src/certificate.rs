//! What a client certificate says about its own lifetime, so ops see an expiry coming before
//! a night's syncs fail on it.
//!
//! Only the first certificate of a PEM bundle is read: by convention (and for rustls) it is
//! the client's own; any that follow are its chain.

use chrono::{DateTime, Utc};

use crate::ConnectorError;

/// The end of the validity of the first certificate in a PEM bundle; an unreadable one is a
/// credentials error (see `eam_model::certificate`, which reads it).
pub fn not_after(pem: &[u8]) -> Result<DateTime<Utc>, ConnectorError> {
    eam_model::certificate::not_after(pem).map_err(|e| ConnectorError::Credentials(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_expiry_of_the_first_certificate_is_read() {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["client.test".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(2031, 3, 4);
        let pem = params.self_signed(&key).expect("certificate").pem();
        let expected = Utc.with_ymd_and_hms(2031, 3, 4, 0, 0, 0).single();
        assert_eq!(not_after(pem.as_bytes()).ok(), expected);
        // A chain after it does not change the answer.
        let chained = format!("{pem}{pem}");
        assert_eq!(not_after(chained.as_bytes()).ok(), expected);
    }

    #[test]
    fn a_pem_without_a_certificate_is_unusable_credentials() {
        for pem in [
            &b""[..],
            b"not a pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(matches!(
                not_after(pem),
                Err(ConnectorError::Credentials(_))
            ));
        }
    }
}

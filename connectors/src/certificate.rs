//! What a client certificate says about its own lifetime, so ops see an expiry coming before
//! a night's syncs fail on it.
//!
//! Only the first certificate of a PEM bundle is read: by convention (and for rustls) it is
//! the client's own; any that follow are its chain.

use chrono::{DateTime, Utc};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::ConnectorError;

/// The end of the validity of the first certificate in a PEM bundle.
pub fn not_after(pem: &[u8]) -> Result<DateTime<Utc>, ConnectorError> {
    let unusable = |what: &str| ConnectorError::Credentials(format!("client certificate: {what}"));
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| unusable("no PEM CERTIFICATE block"))?
        .map_err(|_| unusable("the PEM block cannot be read"))?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| unusable("not a readable X.509 certificate"))?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
        .ok_or_else(|| unusable("its notAfter is out of range"))
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

//! What a client certificate says about its own lifetime, and how ops judge it: so an expiry
//! is seen coming before a night's syncs fail on it.
//!
//! Only the first certificate of a PEM bundle is read: by convention (and for rustls) it is
//! the client's own; any that follow are its chain.

use chrono::{DateTime, Utc};

/// Why a certificate's expiry cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client certificate: {0}")]
pub struct CertificateError(&'static str);

/// The end of the validity of the first certificate in a PEM bundle.
pub fn not_after(pem: &[u8]) -> Result<DateTime<Utc>, CertificateError> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem)
        .find(|block| block.as_ref().map_or(true, |b| b.label == "CERTIFICATE"))
        .ok_or(CertificateError("no PEM CERTIFICATE block"))?
        .map_err(|_| CertificateError("the PEM block cannot be read"))?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&block.contents)
        .map_err(|_| CertificateError("not a readable X.509 certificate"))?;
    DateTime::from_timestamp(certificate.validity().not_after.timestamp(), 0)
        .ok_or(CertificateError("its notAfter is out of range"))
}

/// How a connection's client certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Valid beyond the warning period.
    Ok,
    /// Valid, but ending within the warning period.
    Expiring,
    Expired,
    /// The reference cannot be resolved, or is not a certificate.
    Unreadable,
    /// The connection presents no client certificate.
    None,
}

impl CertificateStatus {
    /// The status of a certificate ending at `not_after`, seen at `now`.
    pub fn of(not_after: DateTime<Utc>, now: DateTime<Utc>, warning_days: u32) -> Self {
        if not_after <= now {
            CertificateStatus::Expired
        } else if (not_after - now).num_days() < i64::from(warning_days) {
            CertificateStatus::Expiring
        } else {
            CertificateStatus::Ok
        }
    }

    /// True when a sync is about to fail on it, or already does.
    pub fn at_risk(self) -> bool {
        matches!(
            self,
            CertificateStatus::Expiring
                | CertificateStatus::Expired
                | CertificateStatus::Unreadable
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Ok => "ok",
            CertificateStatus::Expiring => "expiring",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Unreadable => "unreadable",
            CertificateStatus::None => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_pem_without_a_certificate_is_refused_with_the_reason() {
        for (pem, reason) in [
            (&b""[..], "client certificate: no PEM CERTIFICATE block"),
            (b"not a pem", "client certificate: no PEM CERTIFICATE block"),
            (
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "client certificate: no PEM CERTIFICATE block",
            ),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "client certificate: not a readable X.509 certificate",
            ),
        ] {
            assert_eq!(not_after(pem).unwrap_err().to_string(), reason);
        }
    }

    #[test]
    fn a_status_is_judged_against_the_warning_period() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let days = |d: i64| now + chrono::Duration::days(d);
        assert_eq!(
            CertificateStatus::of(days(31), now, 30),
            CertificateStatus::Ok
        );
        assert_eq!(
            CertificateStatus::of(days(29), now, 30),
            CertificateStatus::Expiring
        );
        assert_eq!(
            CertificateStatus::of(now, now, 30),
            CertificateStatus::Expired
        );
        assert!(CertificateStatus::Unreadable.at_risk());
        assert!(!CertificateStatus::None.at_risk());
    }
}

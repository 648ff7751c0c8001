//! The PKI is created once, reused, shared safely, and replaced before it expires.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir =
            std::env::temp_dir().join(format!("eam-banksim-pki-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn expiry(path: &Path) -> DateTime<Utc> {
    let der = CertificateDer::from_pem_file(path).expect("a PEM certificate");
    not_after(&der).expect("a readable notAfter")
}

#[test]
fn a_new_pki_has_every_file_with_private_keys_readable_only_by_the_owner() {
    let scratch = Scratch::new();
    let paths = ensure_pki(&scratch.0.join("pki")).expect("PKI");
    for cert in paths.certificates() {
        let days = (expiry(cert) - Utc::now()).num_days();
        assert!(
            (363..=365).contains(&days),
            "{}: {days} days",
            cert.display()
        );
    }
    for key in paths.keys() {
        let mode = fs::metadata(key).expect("key file").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        assert!(
            fs::read_to_string(key)
                .expect("key")
                .contains("PRIVATE KEY")
        );
    }
    assert_eq!(paths, PkiPaths::in_dir(&scratch.0.join("pki")));
}

#[test]
fn a_valid_pki_is_reused_as_it_is() {
    let scratch = Scratch::new();
    let dir = scratch.0.join("pki");
    let first = ensure_pki(&dir).expect("PKI");
    let ca = fs::read(&first.ca_cert).expect("CA");
    let second = ensure_pki(&dir).expect("PKI");
    assert_eq!(fs::read(&second.ca_cert).expect("CA"), ca);
}

#[test]
fn concurrent_callers_all_get_the_same_complete_pki() {
    let scratch = Scratch::new();
    let dir = Arc::new(scratch.0.join("shared").join("pki"));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let dir = Arc::clone(&dir);
            std::thread::spawn(move || {
                let paths = ensure_pki(&dir).expect("PKI");
                (
                    fs::read(&paths.ca_cert).expect("CA"),
                    fs::read(&paths.client_cert).expect("client"),
                )
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let leftovers: Vec<_> = fs::read_dir(scratch.0.join("shared"))
        .expect("parent")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".old-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_pki_expiring_within_a_week_is_replaced() {
    let scratch = Scratch::new();
    let dir = scratch.0.join("pki");
    let paths = ensure_pki(&dir).expect("PKI");
    // Swap in a CA that expires in three days.
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    validity(&mut params);
    params.not_after = params.not_before + Duration::from_secs(3 * 24 * 3600);
    let short_lived = params.self_signed(&key).expect("cert").pem();
    fs::remove_file(&paths.ca_cert).expect("remove CA");
    fs::write(&paths.ca_cert, short_lived).expect("write CA");
    assert!((expiry(&paths.ca_cert) - Utc::now()).num_days() < 7);

    let renewed = ensure_pki(&dir).expect("PKI");
    assert!((expiry(&renewed.ca_cert) - Utc::now()).num_days() > 300);
}

#[test]
fn a_missing_file_makes_the_pki_be_recreated() {
    let scratch = Scratch::new();
    let dir = scratch.0.join("pki");
    let paths = ensure_pki(&dir).expect("PKI");
    fs::remove_file(&paths.rogue_client_key).expect("remove");
    let again = ensure_pki(&dir).expect("PKI");
    assert!(again.rogue_client_key.exists());
}

#[test]
fn not_after_reads_utc_and_generalized_times() {
    for (year, month, day) in [(2030, 6, 15), (2061, 1, 2)] {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["x.test".to_owned()]).expect("params");
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let cert = params.self_signed(&key).expect("cert");
        let expected = Utc
            .with_ymd_and_hms(year, u32::from(month), u32::from(day), 0, 0, 0)
            .single();
        assert_eq!(not_after(cert.der()), expected);
    }
    assert_eq!(not_after(b"\x30\x03\x02\x01"), None);
    assert_eq!(not_after(b""), None);
}

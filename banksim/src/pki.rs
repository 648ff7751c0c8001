//! A throw-away PKI for mutual TLS: a CA, a server certificate, a client certificate, and a
//! rogue client certificate from another CA that the simulator must refuse.
//!
//! Many tests in one process and several processes (test binaries, the demo) call
//! [`ensure_pki`] on the same directory at once, so creation is guarded twice: an exclusive
//! lock on a file beside the directory serializes the callers, and the files are written into
//! a fresh temporary directory that is renamed into place in one step, so nobody ever reads a
//! half-written PKI, not even after a crash. A PKI whose certificates expire within a week is
//! replaced. The CA keys are not kept: nothing signs anything after creation.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How long new certificates are valid.
const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates this close to expiry are replaced.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::days(7);

/// Where the PEM files of a PKI live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    pub dir: PathBuf,
    /// The CA clients trust for the server, and the server trusts for clients.
    pub ca_cert: PathBuf,
    /// Server certificate for `127.0.0.1` and `localhost`, signed by the CA.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Client certificate (clientAuth), signed by the CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA the server does not trust.
    pub rogue_ca_cert: PathBuf,
    /// Client certificate signed by the rogue CA: the server refuses it.
    pub rogue_client_cert: PathBuf,
    pub rogue_client_key: PathBuf,
}

impl PkiPaths {
    /// The file layout of a PKI in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        PkiPaths {
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
            rogue_ca_cert: dir.join("rogue-ca.pem"),
            rogue_client_cert: dir.join("rogue-client.pem"),
            rogue_client_key: dir.join("rogue-client-key.pem"),
        }
    }

    fn certificates(&self) -> [&Path; 5] {
        [
            &self.ca_cert,
            &self.server_cert,
            &self.client_cert,
            &self.rogue_ca_cert,
            &self.rogue_client_cert,
        ]
    }

    fn keys(&self) -> [&Path; 3] {
        [&self.server_key, &self.client_key, &self.rogue_client_key]
    }
}

/// Returns the PKI in `dir`, creating it (or replacing one about to expire) when needed.
pub fn ensure_pki(dir: &Path) -> anyhow::Result<PkiPaths> {
    let paths = PkiPaths::in_dir(dir);
    if is_usable(&paths) {
        return Ok(paths);
    }
    let name = dir
        .file_name()
        .with_context(|| format!("{} does not name a directory", dir.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;

    let lock_path = parent.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    // Another caller may have finished while this one waited for the lock.
    if is_usable(&paths) {
        return Ok(paths);
    }

    let staging = parent.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    if let Err(e) = write_pki(&PkiPaths::in_dir(&staging)) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        let retired = parent.join(format!(".{name}.old-{}", uuid::Uuid::new_v4().simple()));
        fs::rename(dir, &retired)
            .with_context(|| format!("moving the expiring PKI {} aside", dir.display()))?;
        let _ = fs::remove_dir_all(&retired);
    }
    if let Err(e) = fs::rename(&staging, dir) {
        let _ = fs::remove_dir_all(&staging);
        // A caller that does not take the lock may still have won the race: use theirs.
        if is_usable(&paths) {
            return Ok(paths);
        }
        return Err(e).with_context(|| format!("moving the new PKI to {}", dir.display()));
    }
    drop(lock);
    Ok(paths)
}

/// Whether every file is present and every certificate is valid for more than a week.
fn is_usable(paths: &PkiPaths) -> bool {
    let renew_at = Utc::now() + RENEW_BEFORE;
    let keys_present = paths
        .keys()
        .iter()
        .all(|k| fs::metadata(k).is_ok_and(|m| m.len() > 0));
    keys_present
        && paths.certificates().iter().all(|c| {
            CertificateDer::from_pem_file(c)
                .ok()
                .and_then(|der| not_after(&der))
                .is_some_and(|expiry| expiry > renew_at)
        })
}

/// A CA able to sign, alive only while the PKI is written.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn validity(params: &mut CertificateParams) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    // Back-date a little so a clock that is slightly behind still accepts the certificates.
    params.not_before = now - Duration::from_secs(3600);
    params.not_after = now + VALIDITY;
}

fn authority(common_name: &str) -> anyhow::Result<Authority> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "EAM bank simulator");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    let cert = params.self_signed(&key)?;
    Ok(Authority {
        issuer: Issuer::new(params, key),
        pem: cert.pem(),
    })
}

/// A leaf certificate signed by `ca`: `(certificate PEM, private key PEM)`.
fn leaf(
    ca: &Authority,
    common_name: &str,
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> anyhow::Result<(String, String)> {
    let key = KeyPair::generate()?;
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let cert = params.signed_by(&key, &ca.issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write_pki(paths: &PkiPaths) -> anyhow::Result<()> {
    let ca = authority("EAM bank simulator CA")?;
    let (server_cert, server_key) = leaf(
        &ca,
        "bank_a simulator",
        &["localhost", "127.0.0.1"],
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = leaf(
        &ca,
        "eam-sync client",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    let rogue = authority("Rogue CA (not trusted by the simulator)")?;
    let (rogue_cert, rogue_key) = leaf(
        &rogue,
        "eam-sync client",
        &[],
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    write_file(&paths.ca_cert, &ca.pem, 0o644)?;
    write_file(&paths.server_cert, &server_cert, 0o644)?;
    write_file(&paths.server_key, &server_key, 0o600)?;
    write_file(&paths.client_cert, &client_cert, 0o644)?;
    write_file(&paths.client_key, &client_key, 0o600)?;
    write_file(&paths.rogue_ca_cert, &rogue.pem, 0o644)?;
    write_file(&paths.rogue_client_cert, &rogue_cert, 0o644)?;
    write_file(&paths.rogue_client_key, &rogue_key, 0o600)?;
    Ok(())
}

fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut file: File = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The end of a certificate's validity, read from its DER encoding.
///
/// Only the path to `tbsCertificate.validity.notAfter` is walked: Certificate and
/// TBSCertificate are SEQUENCEs; the TBS starts with an optional `[0]` version, then serial,
/// signature algorithm, issuer, and the validity SEQUENCE of two times.
pub(crate) fn not_after(der: &[u8]) -> Option<DateTime<Utc>> {
    let (certificate, _) = der_element(der, 0x30)?;
    let (tbs, _) = der_element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xA0) {
        rest = der_element(rest, 0xA0)?.1;
    }
    rest = der_element(rest, 0x02)?.1; // serial number
    rest = der_element(rest, 0x30)?.1; // signature algorithm
    rest = der_element(rest, 0x30)?.1; // issuer
    let (validity, _) = der_element(rest, 0x30)?;
    let not_before = der_any(validity)?;
    let not_after = der_any(not_before.rest)?;
    let text = std::str::from_utf8(not_after.content).ok()?;
    let (year, rest) = match not_after.tag {
        // UTCTime: YYMMDDHHMMSSZ, years 1950 to 2049.
        0x17 => {
            let yy: i32 = text.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        // GeneralizedTime: YYYYMMDDHHMMSSZ.
        0x18 => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    let field = |range: std::ops::Range<usize>| -> Option<u32> { rest.get(range)?.parse().ok() };
    Utc.with_ymd_and_hms(
        year,
        field(0..2)?,
        field(2..4)?,
        field(4..6)?,
        field(6..8)?,
        field(8..10)?,
    )
    .single()
}

/// One DER element and what follows it.
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
    rest: &'a [u8],
}

/// Splits the first DER element off `input` if it has the expected tag: `(content, rest)`.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let element = der_any(input)?;
    (element.tag == tag).then_some((element.content, element.rest))
}

/// Splits the first DER element off `input` (single-byte tags, definite lengths).
fn der_any(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return None;
    }
    let (content, rest) = rest.split_at(length);
    Some(Element { tag, content, rest })
}

/// Reads a PEM file, refusing an empty one with a message that names it.
pub(crate) fn read_pem(path: &Path) -> anyhow::Result<Vec<u8>> {
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if pem.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(pem)
}

#[cfg(test)]
mod tests;

//! The raw statement archive: every document fetched from a bank, kept as received, so that
//! support can read it and the data can be rebuilt (replayed) without asking the bank again.
//!
//! Objects live in an [`object_store`]: a local directory by default, S3 in production.
//! Storage is content-addressed under the tenant, `tenants/<tenant>/sha256/<2 hex>/<sha256>`:
//! the same page fetched every night is stored once, a tenant's documents share one prefix
//! (for lifecycle rules, export and deletion), and a read checks the bytes against their name,
//! so a damaged or altered object is refused rather than replayed. What was fetched, when and
//! by which run is recorded in PostgreSQL (`documents`), not here.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};

use crate::TenantId;

/// Where the archive lives.
#[derive(Clone)]
pub enum ArchiveLocation {
    /// A local directory (created when missing).
    Directory(PathBuf),
    S3(S3Location),
}

/// An S3 bucket.
#[derive(Clone, Default)]
pub struct S3Location {
    pub bucket: String,
    pub region: String,
    /// Another endpoint than AWS's (MinIO, a VPC endpoint, an emulator); `http://` allowed.
    pub endpoint: Option<String>,
    /// Fixed credentials, for tests against an emulator only. None: the standard AWS
    /// environment (`AWS_ACCESS_KEY_ID`…, web identity, container or instance role).
    pub static_credentials: Option<(String, String)>,
}

/// Why the archive failed. Messages name the object, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive cannot be set up (bad directory, bucket settings).
    #[error("the document archive cannot be opened: {0}")]
    Setup(String),
    /// The storage failed to answer: trying again later can succeed.
    #[error("the document archive is unavailable: {0}")]
    Unavailable(String),
    /// An object that must exist does not.
    #[error("archived document {0} is missing")]
    Missing(String),
    /// An object's bytes do not match its content address.
    #[error("archived document {key} is damaged: its SHA-256 is {actual}")]
    Damaged { key: String, actual: String },
}

/// A document as stored: its content address and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The object key in the archive.
    pub key: String,
    pub size: u64,
}

/// The archive; cheap to clone, shared by every task of a process.
#[derive(Clone)]
pub struct Archive {
    objects: Arc<dyn ObjectStore>,
    /// Where it is, for logs and errors (no credentials).
    describe: String,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl Archive {
    /// Opens the archive at a location.
    pub fn open(location: &ArchiveLocation) -> Result<Archive, ArchiveError> {
        match location {
            ArchiveLocation::Directory(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ArchiveError::Setup(format!("creating {}: {e}", dir.display())))?;
                let objects = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| ArchiveError::Setup(e.to_string()))?;
                Ok(Archive {
                    objects: Arc::new(objects),
                    describe: format!("directory {}", dir.display()),
                })
            }
            ArchiveLocation::S3(s3) => {
                // The environment first (credentials, role), then what the settings say.
                let mut builder = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let Some((id, secret)) = &s3.static_credentials {
                    builder = builder
                        .with_access_key_id(id)
                        .with_secret_access_key(secret);
                }
                let objects = builder
                    .build()
                    .map_err(|e| ArchiveError::Setup(e.to_string()))?;
                Ok(Archive {
                    objects: Arc::new(objects),
                    describe: format!("s3 bucket {}", s3.bucket),
                })
            }
        }
    }

    /// The content address of a tenant's document.
    pub fn key(tenant: TenantId, sha256: &str) -> String {
        format!(
            "tenants/{tenant}/sha256/{}/{sha256}",
            sha256.get(..2).unwrap_or("00")
        )
    }

    /// Stores a tenant's document unless the same bytes are already there.
    pub async fn put(&self, tenant: TenantId, body: Bytes) -> Result<Stored, ArchiveError> {
        let sha256 = hex::encode(Sha256::digest(&body));
        let key = Archive::key(tenant, &sha256);
        let path = Path::from(key.as_str());
        let size = body.len() as u64;
        match self.objects.head(&path).await {
            // Same address, same bytes: the reads check it.
            Ok(meta) if meta.size == size => {}
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                self.objects
                    .put(&path, PutPayload::from_bytes(body))
                    .await
                    .map_err(|e| self.unavailable(&key, e))?;
            }
            Err(e) => return Err(self.unavailable(&key, e)),
        }
        Ok(Stored { sha256, key, size })
    }

    /// Reads a document, checked against its content address.
    pub async fn get(&self, key: &str, sha256: &str) -> Result<Bytes, ArchiveError> {
        let path = Path::from(key);
        let body = match self.objects.get(&path).await {
            Ok(found) => found.bytes().await.map_err(|e| self.unavailable(key, e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ArchiveError::Missing(key.to_owned()));
            }
            Err(e) => return Err(self.unavailable(key, e)),
        };
        let actual = hex::encode(Sha256::digest(&body));
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(ArchiveError::Damaged {
                key: key.to_owned(),
                actual,
            });
        }
        Ok(body)
    }

    /// Writes an object under a name of its own (not content-addressed): the audit log's
    /// published heads. With S3 object lock, a later write is a new version and the first one
    /// stays.
    pub async fn put_named(&self, key: &str, body: Bytes) -> Result<(), ArchiveError> {
        self.objects
            .put(&Path::from(key), PutPayload::from_bytes(body))
            .await
            .map_err(|e| self.unavailable(key, e))?;
        Ok(())
    }

    /// Reads an object written by [`Archive::put_named`].
    pub async fn get_named(&self, key: &str) -> Result<Bytes, ArchiveError> {
        match self.objects.get(&Path::from(key)).await {
            Ok(found) => found.bytes().await.map_err(|e| self.unavailable(key, e)),
            Err(object_store::Error::NotFound { .. }) => Err(ArchiveError::Missing(key.to_owned())),
            Err(e) => Err(self.unavailable(key, e)),
        }
    }

    /// The keys of the objects directly under a prefix (`a/b` lists `a/b/…`), sorted.
    pub async fn list_named(&self, prefix: &str) -> Result<Vec<String>, ArchiveError> {
        let listed = match self
            .objects
            .list_with_delimiter(Some(&Path::from(prefix)))
            .await
        {
            Ok(listed) => listed,
            // A local directory that was never written.
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(self.unavailable(prefix, e)),
        };
        let mut keys: Vec<String> = listed
            .objects
            .into_iter()
            .map(|o| o.location.to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    fn unavailable(&self, key: &str, e: object_store::Error) -> ArchiveError {
        ArchiveError::Unavailable(format!("{} ({key}): {e}", self.describe))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        std::env::temp_dir().join(format!("eam-archive-{}", uuid::Uuid::new_v4().simple()))
    }

    #[tokio::test]
    async fn a_document_is_stored_once_under_its_tenant_and_its_hash() {
        let dir = scratch();
        let archive = Archive::open(&ArchiveLocation::Directory(dir.clone())).unwrap();
        let tenant = TenantId::new();
        let body = Bytes::from_static(b":20:STATEMENT-1\r\n");
        let first = archive.put(tenant, body.clone()).await.unwrap();
        let again = archive.put(tenant, body.clone()).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(first.size, 17);
        assert_eq!(
            first.key,
            format!(
                "tenants/{tenant}/sha256/{}/{}",
                &first.sha256[..2],
                first.sha256
            )
        );
        assert_eq!(std::fs::read(dir.join(&first.key)).unwrap(), &body[..]);
        assert_eq!(archive.get(&first.key, &first.sha256).await.unwrap(), body);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_missing_or_altered_document_is_refused() {
        let dir = scratch();
        let archive = Archive::open(&ArchiveLocation::Directory(dir.clone())).unwrap();
        let stored = archive
            .put(TenantId::new(), Bytes::from_static(b"original"))
            .await
            .unwrap();
        std::fs::write(dir.join(&stored.key), b"altered!").unwrap();
        assert!(matches!(
            archive.get(&stored.key, &stored.sha256).await,
            Err(ArchiveError::Damaged { .. })
        ));
        std::fs::remove_file(dir.join(&stored.key)).unwrap();
        assert!(matches!(
            archive.get(&stored.key, &stored.sha256).await,
            Err(ArchiveError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}

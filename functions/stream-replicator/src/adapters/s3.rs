//! The SDK adapter of [`DeadLetterStore`]: an S3 bucket. Objects are small JSON documents
//! (one per dead-lettered change, at most about 1 MB: two 400 KB images in DynamoDB JSON),
//! so each is sent and read in one request. The bucket's default encryption and versioning
//! (set by the stack) apply; a deleted object stays as a noncurrent version until the
//! bucket's lifecycle rule expires it.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use failover_core::{AwsFailure, ErrorClass};

use crate::ports::{DeadLetterStore, Listing};

/// S3's upper bound of keys per ListObjectsV2 page.
const MAX_KEYS_PER_PAGE: usize = 1_000;

/// The dead-letter bucket, through one regional client.
#[derive(Debug, Clone)]
pub struct S3Bucket {
    client: Client,
    bucket: String,
}

impl S3Bucket {
    /// The bucket `bucket`, reached through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl DeadLetterStore for S3Bucket {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), AwsFailure> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("PutObject", &e))
    }

    async fn list(&self, prefix: &str, start_after: Option<&str>, max: usize) -> Result<Listing, AwsFailure> {
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let left = max.saturating_sub(listing.keys.len());
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(start_after.map(str::to_owned))
                .set_continuation_token(token.take())
                .max_keys(left.clamp(1, MAX_KEYS_PER_PAGE) as i32)
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk("ListObjectsV2", &e))?;
            listing
                .keys
                .extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
            let truncated = page.is_truncated().unwrap_or(false);
            token = page.next_continuation_token().map(str::to_owned);
            if !truncated || token.is_none() {
                listing.keys.truncate(max);
                return Ok(listing);
            }
            if listing.keys.len() >= max {
                listing.keys.truncate(max);
                listing.more = true;
                return Ok(listing);
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, AwsFailure> {
        let object = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(object) => object,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => return Err(AwsFailure::from_sdk("GetObject", &e)),
        };
        let bytes = object.body.collect().await.map_err(|e| AwsFailure {
            operation: "GetObject",
            code: None,
            message: format!("reading the object's body failed: {e}"),
            class: ErrorClass::Retryable,
        })?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    async fn delete(&self, key: &str) -> Result<(), AwsFailure> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsFailure::from_sdk("DeleteObject", &e))
    }
}

//! The SDK adapter: [`ItemWriter`] and [`ItemReader`] over a DynamoDB table.

pub(crate) mod convert;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue as SdkValue, DeleteRequest, KeyType, KeysAndAttributes, PutRequest};
use aws_sdk_dynamodb::Client;
use failover_core::{AwsFailure, ErrorClass, FailoverError};

use crate::domain::item::Attributes;
use crate::domain::key::{ItemKey, KeySchema};
use crate::ports::{BatchGet, Conditional, Guard, ItemReader, ItemWriter, Tag, WriteRequest};
use convert::{item_from_sdk, item_to_sdk};

/// Condition of a last-writer-wins put: the target has no version or an older one.
pub const PUT_IF_NEWER: &str = "attribute_not_exists(#v) OR #v < :v";
/// Condition of the tagging step: the item exists and is not newer than the delete.
pub const TAG_IF_NOT_NEWER: &str = "attribute_exists(#k) AND (attribute_not_exists(#v) OR #v <= :v)";
/// Condition of the delete step: still tagged by us and not newer than the delete.
pub const DELETE_IF_TAGGED: &str = "#m = :t AND (attribute_not_exists(#v) OR #v <= :v)";

/// One DynamoDB table, through one regional client.
#[derive(Debug, Clone)]
pub struct DynamoDbTable {
    client: Client,
    table: String,
    schema: KeySchema,
}

fn local_failure(operation: &'static str, message: String) -> AwsFailure {
    AwsFailure {
        operation,
        code: None,
        message,
        class: ErrorClass::NonRetryable,
    }
}

impl DynamoDbTable {
    /// The table `table` with key schema `schema`, reached through `client`.
    pub fn new(client: Client, table: impl Into<String>, schema: KeySchema) -> Self {
        Self {
            client,
            table: table.into(),
            schema,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Positions of `returned` (unprocessed items or keys, as DynamoDB sent them back) among
    /// `sent`. If one cannot be matched, every position is returned: resending a processed
    /// request is harmless, losing an unprocessed one is not.
    fn positions(&self, sent: &[&Attributes], returned: Vec<HashMap<String, SdkValue>>) -> Vec<usize> {
        let keys: Vec<Option<ItemKey>> = sent.iter().map(|a| self.schema.key_of(a).ok()).collect();
        let mut positions = Vec::with_capacity(returned.len());
        for item in returned {
            let key = item_from_sdk(item).ok().and_then(|a| self.schema.key_of(&a).ok());
            match key.and_then(|k| keys.iter().position(|sent| sent.as_ref() == Some(&k))) {
                Some(position) => positions.push(position),
                None => return (0..sent.len()).collect(),
            }
        }
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

/// Reads the key schema of `table` (DescribeTable), once at init.
pub async fn describe_key_schema(client: &Client, table: &str) -> Result<KeySchema, FailoverError> {
    let output = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| AwsFailure::from_sdk("DescribeTable", &e))?;
    let elements = output
        .table
        .map(|t| t.key_schema.unwrap_or_default())
        .unwrap_or_default();
    let name_of = |kind: KeyType| {
        elements
            .iter()
            .find(|e| e.key_type == kind)
            .map(|e| e.attribute_name.clone())
    };
    let partition = name_of(KeyType::Hash)
        .ok_or_else(|| FailoverError::NotReady(format!("DescribeTable {table} returned no partition key")))?;
    KeySchema::new(partition, name_of(KeyType::Range))
        .map_err(|e| FailoverError::NotReady(format!("DescribeTable {table}: {e}")))
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

fn version_value(guard: Guard<'_>) -> SdkValue {
    SdkValue::N(guard.version.to_owned())
}

impl ItemWriter for DynamoDbTable {
    async fn batch_write(&self, requests: &[WriteRequest<'_>]) -> Result<Vec<usize>, AwsFailure> {
        const OP: &str = "BatchWriteItem";
        let mut sdk_requests = Vec::with_capacity(requests.len());
        let mut sent = Vec::with_capacity(requests.len());
        for request in requests {
            let sdk = match request {
                WriteRequest::Put(item) => aws_sdk_dynamodb::types::WriteRequest::builder().put_request(
                    PutRequest::builder()
                        .set_item(Some(item_to_sdk(item)))
                        .build()
                        .map_err(|e| local_failure(OP, e.to_string()))?,
                ),
                WriteRequest::Delete(key) => aws_sdk_dynamodb::types::WriteRequest::builder().delete_request(
                    DeleteRequest::builder()
                        .set_key(Some(item_to_sdk(key)))
                        .build()
                        .map_err(|e| local_failure(OP, e.to_string()))?,
                ),
            };
            sdk_requests.push(sdk.build());
            let (WriteRequest::Put(a) | WriteRequest::Delete(a)) = request;
            sent.push(*a);
        }
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.table, sdk_requests)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(OP, &e))?;
        let unprocessed = output
            .unprocessed_items
            .and_then(|mut by_table| by_table.remove(&self.table))
            .unwrap_or_default();
        if unprocessed.is_empty() {
            return Ok(Vec::new());
        }
        let returned = unprocessed
            .into_iter()
            .map(|r| match (r.put_request, r.delete_request) {
                (Some(put), _) => put.item,
                (None, Some(delete)) => delete.key,
                (None, None) => HashMap::default(),
            })
            .collect();
        Ok(self.positions(&sent, returned))
    }

    async fn put_if_newer(&self, item: &Attributes, guard: Guard<'_>) -> Result<Conditional, AwsFailure> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_sdk(item)))
            .condition_expression(PUT_IF_NEWER)
            .expression_attribute_names("#v", guard.version_attribute)
            .expression_attribute_values(":v", version_value(guard))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Conditional::Applied),
            Err(e) if is_condition_failure(&e) => Ok(Conditional::ConditionFailed),
            Err(e) => Err(AwsFailure::from_sdk("PutItem", &e)),
        }
    }

    async fn tag_for_delete(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> Result<Conditional, AwsFailure> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_to_sdk(key)))
            .update_expression("SET #m = :t")
            .condition_expression(TAG_IF_NOT_NEWER)
            .expression_attribute_names("#m", tag.marker_attribute)
            .expression_attribute_names("#k", self.schema.partition())
            .expression_attribute_names("#v", guard.version_attribute)
            .expression_attribute_values(":t", SdkValue::S(tag.token.to_owned()))
            .expression_attribute_values(":v", version_value(guard))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Conditional::Applied),
            Err(e) if is_condition_failure(&e) => Ok(Conditional::ConditionFailed),
            Err(e) => Err(AwsFailure::from_sdk("UpdateItem", &e)),
        }
    }

    async fn delete_if_tagged(
        &self,
        key: &Attributes,
        tag: Tag<'_>,
        guard: Guard<'_>,
    ) -> Result<Conditional, AwsFailure> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item_to_sdk(key)))
            .condition_expression(DELETE_IF_TAGGED)
            .expression_attribute_names("#m", tag.marker_attribute)
            .expression_attribute_names("#v", guard.version_attribute)
            .expression_attribute_values(":t", SdkValue::S(tag.token.to_owned()))
            .expression_attribute_values(":v", version_value(guard))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Conditional::Applied),
            Err(e) if is_condition_failure(&e) => Ok(Conditional::ConditionFailed),
            Err(e) => Err(AwsFailure::from_sdk("DeleteItem", &e)),
        }
    }

    async fn untag(&self, key: &Attributes, tag: Tag<'_>) -> Result<Conditional, AwsFailure> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_to_sdk(key)))
            .update_expression("REMOVE #m")
            .condition_expression("#m = :t")
            .expression_attribute_names("#m", tag.marker_attribute)
            .expression_attribute_values(":t", SdkValue::S(tag.token.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Conditional::Applied),
            Err(e) if is_condition_failure(&e) => Ok(Conditional::ConditionFailed),
            Err(e) => Err(AwsFailure::from_sdk("UpdateItem", &e)),
        }
    }
}

impl ItemReader for DynamoDbTable {
    async fn batch_get(&self, keys: &[&Attributes]) -> Result<BatchGet, AwsFailure> {
        const OP: &str = "BatchGetItem";
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|k| item_to_sdk(k)).collect()))
            // The stream says the item changed; only a consistent read is sure to see that change.
            .consistent_read(true)
            .build()
            .map_err(|e| local_failure(OP, e.to_string()))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk(OP, &e))?;
        let items = output
            .responses
            .and_then(|mut by_table| by_table.remove(&self.table))
            .unwrap_or_default()
            .into_iter()
            .map(|item| item_from_sdk(item).map_err(|e| local_failure(OP, e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let unprocessed = output
            .unprocessed_keys
            .and_then(|mut by_table| by_table.remove(&self.table))
            .map(|k| k.keys)
            .unwrap_or_default();
        let unprocessed = if unprocessed.is_empty() {
            Vec::new()
        } else {
            self.positions(keys, unprocessed)
        };
        Ok(BatchGet { items, unprocessed })
    }
}
